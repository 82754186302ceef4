"""A local stand-in for Twilio's REST API and webhooks, for the real SDK.

It answers ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` as
Twilio documents it (https://www.twilio.com/docs/messaging/api/message-
resource): HTTP 201 with the Message resource in JSON, after checking the
Basic authentication (account SID and auth token, or API key and secret).
It keeps every message it accepted, can be told to refuse the next ones
with Twilio's documented errors, and posts status callbacks and inbound
messages signed like Twilio does.
"""
import base64
import email.utils
import json
import re
import secrets
import threading
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from twilio.request_validator import RequestValidator

MESSAGES = re.compile(r'^/2010-04-01/Accounts/(AC\w+)/Messages\.json$')
# https://www.twilio.com/docs/errors/<code>
ERRORS = {
    21211: (HTTPStatus.BAD_REQUEST,
        "The 'To' number {to} is not a valid phone number."),
    21610: (HTTPStatus.BAD_REQUEST,
        "Attempt to send to unsubscribed recipient"),
    20429: (HTTPStatus.TOO_MANY_REQUESTS, "Too Many Requests"),
    }


def sid(prefix):
    return prefix + secrets.token_hex(16)


class TwilioServer:
    "Start with start(), stop with stop(); url is the API's base URL"

    def __init__(self, account_sid, auth_token, credentials=None):
        self.account_sid = account_sid
        self.auth_token = auth_token
        # Who may call the API: the account itself, and API keys
        self.credentials = {account_sid: auth_token, **(credentials or {})}
        self.messages = []
        self.requests = 0
        self.failures = []
        self.lock = threading.Lock()
        self.port = 0

    def start(self):
        "Listen, on the port of the previous start if any"
        self.httpd = ThreadingHTTPServer(
            ('127.0.0.1', self.port), self._handler())
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        "Stop listening: clients get connection refused"
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def url(self):
        return f'http://127.0.0.1:{self.port}'

    def fail_next(self, code, count=1, to=None):
        """Answer the next count requests (to the number to, if given)
        with Twilio's error code"""
        with self.lock:
            self.failures.extend([(code, to)] * count)

    def _failure(self, to):
        for index, (code, number) in enumerate(self.failures):
            if number in {None, to}:
                del self.failures[index]
                return code

    def to(self, number):
        return [m for m in self.messages if m['to'] == number]

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):
                pass

            def do_POST(self):
                match = MESSAGES.match(self.path)
                if not match:
                    return self.answer(HTTPStatus.NOT_FOUND, {
                            'code': 20404, 'status': 404,
                            'message': f"The requested resource "
                            f"{self.path} was not found"})
                if not self.authenticated(match.group(1)):
                    return self.answer(HTTPStatus.UNAUTHORIZED, {
                            'code': 20003, 'status': 401,
                            'message': "Authenticate"})
                length = int(self.headers.get('Content-Length', 0))
                form = dict(urllib.parse.parse_qsl(
                        self.rfile.read(length).decode()))
                with server.lock:
                    server.requests += 1
                    failure = server._failure(form.get('To'))
                    if failure:
                        status, message = ERRORS[failure]
                        return self.answer(status, {
                                'code': failure,
                                'message': message.format(
                                    to=form.get('To')),
                                'more_info': 'https://www.twilio.com/docs/'
                                f'errors/{failure}',
                                'status': status.value,
                                })
                    message = server.resource(match.group(1), form)
                    server.messages.append(message)
                self.answer(HTTPStatus.CREATED, message)

            def authenticated(self, account_sid):
                header = self.headers.get('Authorization', '')
                if not header.startswith('Basic ') or (
                        account_sid != server.account_sid):
                    return False
                user, _, password = base64.b64decode(
                    header[6:]).decode().partition(':')
                return server.credentials.get(user) == password

            def answer(self, status, payload):
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def resource(self, account_sid, form):
        "The Message resource Twilio answers a create with"
        message_sid = sid('SM')
        now = email.utils.formatdate(usegmt=True)
        return {
            'sid': message_sid,
            'account_sid': account_sid,
            'messaging_service_sid': form.get('MessagingServiceSid'),
            'to': form['To'],
            'from': form.get('From'),
            'body': form['Body'],
            'status': 'accepted' if form.get('MessagingServiceSid')
            else 'queued',
            'num_segments': '0' if form.get('MessagingServiceSid')
            else str(-(-len(form['Body']) // 153)
                if len(form['Body']) > 160 else 1),
            'num_media': '0',
            'direction': 'outbound-api',
            'api_version': '2010-04-01',
            'price': None,
            'price_unit': 'USD',
            'error_code': None,
            'error_message': None,
            'date_created': now,
            'date_updated': now,
            'date_sent': None,
            'uri': f'/2010-04-01/Accounts/{account_sid}/Messages/'
            f'{message_sid}.json',
            'subresource_uris': {
                'media': f'/2010-04-01/Accounts/{account_sid}/Messages/'
                f'{message_sid}/Media.json',
                },
            'status_callback': form.get('StatusCallback'),
            }

    def signed(self, url, params, auth_token=None):
        "The headers and body of a webhook request to url, as Twilio signs"
        signature = RequestValidator(
            auth_token or self.auth_token).compute_signature(url, params)
        return {'X-Twilio-Signature': signature}, urllib.parse.urlencode(
            params)

    def post(self, client, url, params, auth_token=None, sign=True):
        """Post params to url as Twilio does, with client (a werkzeug test
        client of trytond), signed with auth_token (the account's by
        default) unless sign is false"""
        headers, body = self.signed(url, params, auth_token)
        parts = urllib.parse.urlsplit(url)
        return client.post(
            parts.path + (f'?{parts.query}' if parts.query else ''),
            data=body, headers=headers if sign else {},
            content_type='application/x-www-form-urlencoded')

    def status_callback(self, message, status, error_code=None):
        "Twilio's delivery report of message: (url, params)"
        params = {
            'MessageSid': message['sid'],
            'SmsSid': message['sid'],
            'AccountSid': message['account_sid'],
            'From': message['from'] or '',
            'To': message['to'],
            'MessageStatus': status,
            'SmsStatus': status,
            'ApiVersion': '2010-04-01',
            }
        if error_code:
            params['ErrorCode'] = str(error_code)
        return message['status_callback'], params

    def inbound(self, from_, to, body):
        "The params of an SMS received from from_ on the number to"
        message_sid = sid('SM')
        return {
            'MessageSid': message_sid,
            'SmsSid': message_sid,
            'SmsMessageSid': message_sid,
            'AccountSid': self.account_sid,
            'From': from_,
            'To': to,
            'Body': body,
            'NumMedia': '0',
            'NumSegments': '1',
            'ApiVersion': '2010-04-01',
            }
