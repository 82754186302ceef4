"""A customer's personal data: export it (GDPR art. 15, CCPA) and erase it
(art. 17) while keeping what accounting law requires."""
import datetime as dt
import io
import json
import zipfile
from decimal import Decimal

from sql import Column

from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import ModelView, fields
from trytond.pool import Pool, PoolMeta
from trytond.transaction import (
    Transaction, inactive_records, without_check_access)
from trytond.wizard import Button, StateView, Wizard

from .bulk import chunks, in_

ERASED_ADDRESS_COLUMNS = [
    'party_name', 'attn', 'street_unstructured', 'street_name',
    'building_name', 'building_number', 'unit_number', 'floor_number',
    'room_number', 'post_box', 'private_bag', 'post_office', 'postal_code',
    'city']


def plain(value):
    "A value JSON writes as is: amounts and dates as strings"
    if isinstance(value, (Decimal, dt.date, dt.time, dt.timedelta)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


class Party(metaclass=PoolMeta):
    __name__ = 'party.party'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._buttons.update({
                'dunning_export_personal_data': {},
                'dunning_personal_data_zip': {},
                'dunning_erase_personal_data': {},
                })

    @classmethod
    @ModelView.button_action(
        'dunning_advanced.wizard_party_personal_data_export')
    def dunning_export_personal_data(cls, parties):
        pass

    @classmethod
    @ModelView.button
    def dunning_personal_data_zip(cls, parties):
        "Return the ZIP of the party's personal data"
        if len(parties) != 1:
            raise UserError(gettext(
                    'dunning_advanced.msg_personal_data_one_party'))
        party, = parties
        data = cls.dunning_personal_data(party)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, 'w', zipfile.ZIP_DEFLATED) as archive:
            archive.writestr('party.json', json.dumps(
                    data, indent=2, ensure_ascii=False, sort_keys=True))
            for message in data['messages']:
                if message['body']:
                    archive.writestr(
                        f"messages/{message['id']}.txt", message['body'])
                if message['body_html']:
                    archive.writestr(
                        f"messages/{message['id']}.html",
                        message['body_html'])
        return buffer.getvalue()

    @classmethod
    def dunning_personal_data(cls, party):
        """Return {section: [record values]} of every record naming the
        party; modules add their sections with super()"""
        pool = Pool()
        records = {
            'party': ('party.party', [('id', '=', party.id)]),
            'addresses': ('party.address', [('party', '=', party.id)]),
            'contact_mechanisms': (
                'party.contact_mechanism', [('party', '=', party.id)]),
            'identifiers': ('party.identifier', [('party', '=', party.id)]),
            'consents': (
                'account.dunning.consent', [('party', '=', party.id)]),
            'segments': (
                'account.dunning.segment', [('party', '=', party.id)]),
            'segment_changes': (
                'account.dunning.segment.change', [('party', '=', party.id)]),
            'dunnings': ('account.dunning', [('party', '=', party.id)]),
            'disputes': ('account.dunning', [
                    ('party', '=', party.id),
                    ('blocked', '=', True),
                    ]),
            'messages': (
                'account.dunning.message', [('party', '=', party.id)]),
            'audit': ('account.dunning.audit', [('party', '=', party.id)]),
            'tasks': ('account.dunning.task', [('party', '=', party.id)]),
            'collections': (
                'account.dunning.collection', [('party', '=', party.id)]),
            'rewards': ('account.dunning.reward', [('party', '=', party.id)]),
            }
        return {section: cls._dunning_personal_records(
                pool.get(model), domain)
            for section, (model, domain) in records.items()}

    @staticmethod
    def _dunning_personal_records(Model, domain):
        "The stored values of the records, links by id"
        names = [name for name, field in Model._fields.items()
            if not isinstance(field, (fields.Function, fields.MultiValue,
                    fields.One2Many, fields.Many2Many, fields.Binary))]
        with without_check_access(), inactive_records():
            ids = [r.id for r in Model.search(domain, order=[('id', 'ASC')])]
            rows = Model.read(ids, names)
        return [{name: plain(row[name]) for name in names}
            for row in sorted(rows, key=lambda r: r['id'])]

    @classmethod
    @ModelView.button
    def dunning_erase_personal_data(cls, parties):
        cls.dunning_erase(parties)

    @classmethod
    def dunning_erase(cls, parties):
        """Anonymise the parties' personal data where it is stored, keeping
        amounts, dates, ids and kinds: the ledger and the audit stay whole.

        The append-only records are changed in SQL, as Tryton's party
        erasure does, since nothing else may rewrite them.
        """
        pool = Pool()
        Audit = pool.get('account.dunning.audit')
        Attachment = pool.get('ir.attachment')
        Note = pool.get('ir.note')
        transaction = Transaction()
        cursor = transaction.connection.cursor()
        with without_check_access(), inactive_records():
            for party in parties:
                for Model, domain, columns, values in (
                        cls.dunning_erase_columns(party.id)):
                    ids = [r.id for r in Model.search(domain)]
                    tables = [Model.__table__()]
                    if Model._history:
                        tables.append(Model.__table_history__())
                    for table in tables:
                        for sub_ids in chunks(ids):
                            cursor.execute(*table.update(
                                    [Column(table, c) for c in columns],
                                    values, where=in_(table.id, sub_ids)))
            resources = [str(p) for p in parties]
            for Resource in [Attachment, Note]:
                Resource.delete(Resource.search(
                        [('resource', 'in', resources)]))
        # Records cached in the transaction still hold the erased values.
        transaction.counter += 1
        Audit.record([Audit.entry('personal_data_erased', party=p)
                for p in parties])

    @classmethod
    def dunning_erase_columns(cls, party_id):
        """Return [(Model, domain, columns, values)] to overwrite for the
        party; modules add theirs with super()"""
        pool = Pool()
        Party = pool.get('party.party')
        Identifier = pool.get('party.identifier')
        Address = pool.get('party.address')
        ContactMechanism = pool.get('party.contact_mechanism')
        Message = pool.get('account.dunning.message')
        Audit = pool.get('account.dunning.audit')
        Consent = pool.get('account.dunning.consent')
        Segment = pool.get('account.dunning.segment')
        SegmentChange = pool.get('account.dunning.segment.change')
        Dunning = pool.get('account.dunning')
        Task = pool.get('account.dunning.task')
        Collection = pool.get('account.dunning.collection')
        of_party = [('party', '=', party_id)]
        return [
            (Party, [('id', '=', party_id)],
                ['name', 'dunning_segment_pin_reason'],
                [gettext('dunning_advanced.msg_erased_party_name',
                        id=party_id), None]),
            (Identifier, of_party, ['type', 'code'], [None, '****']),
            (Address, of_party, ERASED_ADDRESS_COLUMNS,
                [None] * len(ERASED_ADDRESS_COLUMNS)),
            (ContactMechanism, of_party,
                ['type', 'value', 'value_compact', 'name', 'comment',
                    'active'],
                ['other', '****', None, None, None, False]),
            # Nobody left to send them to.
            (Message, of_party + [('state', 'in', ['queued', 'deferred'])],
                ['state'], ['failed']),
            # An empty body, not none, so nothing renders them again.
            (Message, of_party,
                ['recipient', 'subject', 'body', 'body_html', 'last_error'],
                [None, '', '', None, None]),
            (Audit, of_party, ['reason'], [None]),
            (Consent, of_party, ['proof'], [None]),
            (Segment, of_party, ['reason'], [None]),
            (SegmentChange, of_party, ['reason'], [None]),
            (Dunning, of_party, ['block_reason'], [None]),
            (Task, of_party, ['note'], [None]),
            (Collection, of_party, ['note'], [None]),
            ]


class PersonalDataExportResult(ModelView):
    "Export Personal Data"
    __name__ = 'party.dunning.personal_data.export.result'
    file = fields.Binary("File", filename='filename', readonly=True)
    filename = fields.Char("File Name", readonly=True)


class PersonalDataExport(Wizard):
    "Export Personal Data"
    __name__ = 'party.dunning.personal_data.export'
    start = StateView('party.dunning.personal_data.export.result',
        'dunning_advanced.personal_data_export_result_view_form', [
            Button("Close", 'end', 'tryton-close', default=True),
            ])

    def default_start(self, fields):
        Party = self.model
        return {
            'file': Party.dunning_personal_data_zip([self.record]),
            'filename': f'personal-data-{self.record.id}.zip',
            }
