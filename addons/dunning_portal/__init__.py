from . import documents, survey  # noqa: F401
from . import auth, live, pages  # noqa: F401 (the portal's routes)
from . import plan_routes  # noqa: F401 (payment plans)
