"""The errors a user of dunning_advanced can meet."""
from trytond.model.exceptions import AccessError, ValidationError
from trytond.modules.account_credit_limit.exceptions import CreditLimitError


class OrderingBlockedError(CreditLimitError):
    "An error, never a warning: only an override lifts the block"


class BlockOverrideValidationError(ValidationError):
    pass


class SigningKeyAccessError(AccessError):
    "Only administrators may touch the key that signs the links"
