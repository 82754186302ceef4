from . import routes  # noqa: F401 (registers the Twilio webhooks)
