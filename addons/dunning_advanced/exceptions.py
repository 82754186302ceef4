"""The errors a user of dunning_advanced can meet."""
from trytond.model.exceptions import AccessError, ValidationError
from trytond.modules.account_credit_limit.exceptions import CreditLimitError


class OrderingBlockedError(CreditLimitError):
    "An error, never a warning: only an override lifts the block"


class BlockOverrideValidationError(ValidationError):
    pass


class SigningKeyAccessError(AccessError):
    "Only administrators may touch the key that signs the links"


class RunAheadError(ValidationError):
    "A real run dated after the company's today: it would act ahead of time"


class DayCountError(ValidationError):
    "A number of days beyond what any dunning policy can mean"


class NotFiniteError(ValidationError):
    "An amount or rate that is not a number (NaN) or is infinite"
