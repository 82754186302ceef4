from trytond.res.user import PasswordError


class PortalPasswordError(PasswordError):
    "A password the portal refuses: too short or too common"
