"""The demo's SMS provider: the local Twilio of the tests, keeping a file.

It answers the Twilio SDK of dunning_sms as Twilio's API does (see
``tests/twilio_server.py``) and writes each SMS it accepts to
``<outdir>/<UTC time>-<to>.txt``, beside the e-mails of the SMTP sink, for a
person to read::

    sink = SMSSink(ACCOUNT_SID, AUTH_TOKEN, port=8026, outdir='var/outbox/sms')
    sink.start()
    ...
    sink.stop()
"""
import datetime as dt
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'tests'))

from twilio_server import TwilioServer  # noqa: E402

__all__ = ['SMSSink']


class SMSSink(TwilioServer):
    "The local Twilio, each message accepted written to outdir"

    def __init__(self, account_sid, auth_token, port=0,
            outdir='var/outbox/sms'):
        super().__init__(account_sid, auth_token)
        self.port = port
        self.outdir = os.path.abspath(outdir)
        self.files = []

    def start(self):
        os.makedirs(self.outdir, exist_ok=True)
        return super().start()

    def resource(self, account_sid, form):
        message = super().resource(account_sid, form)
        now = dt.datetime.now(dt.timezone.utc)
        name = '%s-%s.txt' % (now.strftime('%Y%m%dT%H%M%S.%fZ'),
            re.sub(r'[^0-9+]', '', form['To']))
        path = os.path.join(self.outdir, name)
        with open(path, 'w', encoding='utf-8') as fp:
            fp.write("From: %s\nTo: %s\nDate: %s\nSid: %s\n\n%s\n" % (
                    form.get('From') or form.get('MessagingServiceSid'),
                    form['To'], message['date_created'], message['sid'],
                    form['Body']))
        self.files.append(path)
        return message
