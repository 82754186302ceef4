class SMSError(Exception):
    "The SMS was not taken by the provider; a later attempt may be"


class SMSRecipientError(SMSError):
    "The provider will never deliver to this recipient: no later attempt"
