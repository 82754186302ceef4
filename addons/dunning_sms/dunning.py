"""The run reaches parties by SMS on their mobile number."""
from collections import defaultdict

from sql import Literal, Null

from trytond.modules.dunning_advanced.bulk import chunks, in_
from trytond.pool import Pool, PoolMeta
from trytond.transaction import Transaction

from .message import SMS
from .party import sms_number_in


class Run(metaclass=PoolMeta):
    __name__ = 'account.dunning.run'

    @classmethod
    def load_recipients(cls, company, party_ids):
        "A party with a mobile number that takes SMS is reached on it"
        pool = Pool()
        Configuration = pool.get('account.configuration')
        recipients = super().load_recipients(company, party_ids)
        if Configuration(1).sms_settings(company):
            numbers, _ = cls.load_sms_numbers(party_ids)
            for party_id, number in numbers.items():
                recipients.setdefault(party_id, {})[SMS] = number
        return recipients

    @classmethod
    def load_sms_numbers(cls, party_ids):
        """Return ({party id: number}, [(contact mechanism id, why)]): the
        number each party is sent SMS on, in E.164, and the numbers that
        cannot take SMS.

        The candidates are the mobile numbers and the phone numbers marked
        for dunning not yet marked unable to take SMS; the first of those
        marked for dunning, else the first mobile, is used. A number is
        read in the countries of the party's addresses, like Tryton does.
        """
        pool = Pool()
        contact = pool.get('party.contact_mechanism').__table__()
        address = pool.get('party.address').__table__()
        country = pool.get('country.country').__table__()
        cursor = Transaction().connection.cursor()
        query = (contact
            .join(address, 'LEFT', condition=(address.party == contact.party)
                & (address.active == Literal(True)))
            .join(country, 'LEFT', condition=country.id == address.country))
        mechanisms = {}
        regions = defaultdict(list)
        for sub_ids in chunks(party_ids):
            cursor.execute(*query.select(
                    contact.id, contact.party, contact.value, contact.type,
                    contact.dunning, country.code,
                    where=in_(contact.party, sub_ids)
                    & (contact.active == Literal(True))
                    & (contact.dunning_sms_error == Null)
                    & ((contact.type == 'mobile')
                        | ((contact.type == 'phone')
                            & (contact.dunning == Literal(True)))),
                    order_by=[contact.party, contact.sequence, contact.id,
                        address.sequence, address.id]))
            for (mechanism_id, party_id, value, type_, for_dunning,
                    code) in cursor:
                rank = 0 if for_dunning else 1
                mechanisms.setdefault(
                    mechanism_id, (party_id, value, rank, len(mechanisms)))
                if code and code not in regions[mechanism_id]:
                    regions[mechanism_id].append(code)
        numbers, invalid = {}, []
        for mechanism_id, (party_id, value, rank, order) in sorted(
                mechanisms.items(), key=lambda m: (m[1][2], m[1][3])):
            number, reason = sms_number_in(
                value or '', tuple(regions[mechanism_id]))
            if number:
                numbers.setdefault(party_id, number)
            else:
                invalid.append((mechanism_id, reason))
        return numbers, invalid

    def apply(self, decisions, details, context):
        "Mark the numbers of the batch that cannot take SMS, once"
        pool = Pool()
        Configuration = pool.get('account.configuration')
        ContactMechanism = pool.get('party.contact_mechanism')
        counts = super().apply(decisions, details, context)
        if not Configuration(1).sms_settings(self.company):
            return counts
        _, invalid = self.load_sms_numbers(list(details['parties']))
        by_reason = defaultdict(list)
        for mechanism_id, reason in invalid:
            by_reason[reason].append(mechanism_id)
        for reason, mechanism_ids in by_reason.items():
            ContactMechanism.flag_sms_invalid(
                ContactMechanism.browse(mechanism_ids),
                ContactMechanism.sms_reason(reason))
        return counts
