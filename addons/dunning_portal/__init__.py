from . import documents, survey  # noqa: F401
from . import auth, live, pages  # noqa: F401 (the portal's routes)
from . import pay  # noqa: F401 (card payments and the webhook check)
from . import plan_routes  # noqa: F401 (payment plans)
