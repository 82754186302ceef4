#!/usr/bin/env python3
"""A tiny SMTP sink for the demo.

Every message received on the port is written, as the raw bytes received,
to ``<outdir>/NNNN-<subject>.eml`` so that it can be opened with any mail
client (Thunderbird, Outlook, Apple Mail, ``mutt -f``...).

Usable from Python::

    sink = SMTPSink(port=8025, outdir='var/outbox')
    sink.start()
    ...
    print(sink.count)
    sink.stop()

or standalone::

    python demo/smtp_sink.py --port 8025 --outdir var/outbox
"""
import argparse
import email
import email.policy
import os
import re
import signal
import sys
import threading
import time
import unicodedata

from aiosmtpd.controller import Controller

__all__ = ['SMTPSink']

_FILENAME = re.compile(r'^(\d{4})-.*\.eml$')


def sanitise(text, max_length=60):
    "Return text usable as a portable file name"
    text = unicodedata.normalize('NFKD', text or '')
    text = text.encode('ascii', 'ignore').decode('ascii')
    text = re.sub(r'[^A-Za-z0-9._-]+', '_', text).strip('._-')
    return text[:max_length].rstrip('._-') or 'no-subject'


def _subject(data):
    try:
        message = email.message_from_bytes(data, policy=email.policy.default)
        return str(message.get('Subject', '') or '')
    except Exception:
        return ''


class _Handler:

    def __init__(self, sink):
        self.sink = sink

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode('utf-8', 'surrogateescape')
        self.sink._write(data, envelope)
        return '250 Message accepted for delivery'


class SMTPSink:
    "SMTP server writing every received message into outdir"

    def __init__(self, host='127.0.0.1', port=8025, outdir='var/outbox',
            verbose=False):
        self.host = host
        self.port = port
        self.outdir = os.path.abspath(outdir)
        self.verbose = verbose
        self.files = []
        self._lock = threading.Lock()
        self._controller = None
        self._next = 1

    @property
    def count(self):
        "Number of messages received since start"
        with self._lock:
            return len(self.files)

    def _write(self, data, envelope):
        subject = _subject(data)
        with self._lock:
            number = self._next
            self._next += 1
            name = '%04d-%s.eml' % (number, sanitise(subject))
            path = os.path.join(self.outdir, name)
            with open(path, 'wb') as fp:
                fp.write(data)
            self.files.append(path)
        if self.verbose:
            print("SMTP sink: %s -> %s (%s)" % (
                    envelope.mail_from, ', '.join(envelope.rcpt_tos), name),
                flush=True)
        return path

    def start(self):
        os.makedirs(self.outdir, exist_ok=True)
        numbers = [int(m.group(1)) for m in map(
                    _FILENAME.match, os.listdir(self.outdir)) if m]
        self._next = max(numbers, default=0) + 1
        self._controller = Controller(
            _Handler(self), hostname=self.host, port=self.port,
            # messages may be large (PDF letters attached)
            server_kwargs={'data_size_limit': 0})
        self._controller.start()
        return self

    def stop(self):
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=8025)
    parser.add_argument('--outdir', default='var/outbox')
    options = parser.parse_args(argv)

    sink = SMTPSink(options.host, options.port, options.outdir, verbose=True)
    try:
        sink.start()
    except OSError as exception:
        sys.exit("Cannot listen on %s:%s: %s" % (
                options.host, options.port, exception))
    print("SMTP sink listening on %s:%s, writing to %s (Ctrl-C to stop)" % (
            options.host, options.port, sink.outdir), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    try:
        while not stop.is_set():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        sink.stop()
    print("SMTP sink stopped, %d message(s) received" % sink.count)


if __name__ == '__main__':
    main()
