"""Segments learnt from the ledger choose tone and cadence (proteus, real
SMTP): the same overdue invoice gets a gentle note at +3 for a reliable
garage and firm, earlier reminders for a customer late every month."""
import datetime as dt

import pytest

from conftest import make_customer, make_invoice, pay, run_dunning

DUE = dt.date(2026, 10, 31)


def days(n):
    return DUE + dt.timedelta(days=n)


def build_history(world, late_days):
    """Four invoices of 2026 per party, each paid late_days[party] after its
    due date; invoices are numbered in date order"""
    for month in (3, 4, 5, 6):
        for party, days_late in late_days.items():
            invoice = make_invoice(
                world, party, '400.00', dt.date(2026, month, 1))
            due = invoice.lines_to_pay[0].maturity_date
            pay(world, invoice, due + dt.timedelta(days=days_late))


def template_subject(xml_id, company='Dunder Mifflin'):
    from proteus import Model
    ModelData = Model.get('ir.model.data')
    Template = Model.get('account.dunning.template')
    template = Template(ModelData.get_id('dunning_advanced', xml_id, {}))
    return template.subject.replace('${company}', company)


def emails_to(mailbox, address):
    return [m for m in mailbox.messages if address in m['To']]


@pytest.fixture
def garages(tryton):
    reliable = make_customer("Garage Fiable", 'fiable@garage.example')
    late = make_customer("Garage Tardif", 'tardif@garage.example')
    build_history(tryton, {reliable: -2, late: 12})
    for party in (reliable, late):
        make_invoice(tryton, party, '1000.00', days(-30))
    return reliable, late


def test_reliable_gets_a_gentle_note_late_repeat_late_firm_and_early(
        tryton, mailbox, garages):
    from proteus import Model
    Message = Model.get('account.dunning.message')
    reliable, late = garages

    run_dunning(days(-10))
    reliable.reload()
    late.reload()
    assert reliable.dunning_segment == 'reliable'
    assert late.dunning_segment == 'repeat_late'
    assert "4 invoices paid late" in late.dunning_segment_reason
    assert not emails_to(mailbox, 'fiable@')
    courtesy, = emails_to(mailbox, 'tardif@')
    assert courtesy['Subject'] == template_subject('template_courtesy_firm')

    for day in range(-9, 3):
        run_dunning(days(day))
    assert not emails_to(mailbox, 'fiable@')

    run_dunning(days(3))
    gentle, = emails_to(mailbox, 'fiable@')
    assert gentle['Subject'] == template_subject('template_overdue_gentle')
    assert "1,000.00" in gentle.get_body(('plain',)).get_content()

    firm_before = len(emails_to(mailbox, 'tardif@'))
    run_dunning(days(7))
    firm = emails_to(mailbox, 'tardif@')[firm_before:]
    assert [m['Subject'] for m in firm] == [
        template_subject('template_firm_firm')]
    assert not emails_to(mailbox, 'fiable@')[1:], "reliable: not before +10"

    tones = {(m.party.name, m.level.name): m.tone for m in Message.find([])}
    assert tones[("Garage Fiable", "Overdue 3 days")] == 'gentle'
    assert tones[("Garage Tardif", "Courtesy reminder")] == 'firm'


def test_segment_figures_history_and_pin_on_the_party(tryton, garages):
    from proteus import Model
    Audit = Model.get('account.dunning.audit')
    reliable, late = garages

    run_dunning(days(-10))
    late.reload()
    figures, = late.dunning_segment_figures
    assert (figures.paid_count, figures.late_count) == (4, 4)
    assert figures.worst_days_late == 12
    change, = late.dunning_segment_changes
    assert (change.from_, change.to) == (None, 'repeat_late')

    late.dunning_segment_pin = 'reliable'
    late.dunning_segment_pin_reason = "Agreed payment run on the 15th"
    late.dunning_segment_pin_until = days(5)
    late.save()
    pinned, = Audit.find([
            ('party', '=', late.id), ('kind', '=', 'segment_pinned')])
    assert "Agreed payment run on the 15th" in pinned.reason

    run_dunning(days(-9))
    late.reload()
    assert late.dunning_segment == 'reliable'
    assert "Agreed payment run" in late.dunning_segment_reason
    assert [c.to for c in late.dunning_segment_changes][:2] == [
        'reliable', 'repeat_late']

    run_dunning(days(6))
    late.reload()
    assert late.dunning_segment == 'repeat_late', "the pin ended on day +5"


def test_pin_without_reason_is_refused(tryton, garages):
    from trytond.model.exceptions import RequiredValidationError
    reliable, _ = garages
    reliable.dunning_segment_pin = 'high_risk'
    with pytest.raises(RequiredValidationError):
        reliable.save()
    reliable.reload()
    assert reliable.dunning_segment_pin is None


@pytest.mark.parametrize('values, error', [
        ({'segment_repeat_late_count': 1}, 'overlaps'),
        ({'segment_high_risk_late_count': 2}, 'inverted'),
        ({'segment_high_risk_average_days': 1}, 'inverted'),
        ({'segment_window_days': 0}, 'must be a positive'),
        ])
def test_contradicting_thresholds_are_refused(tryton, values, error):
    from trytond.model.exceptions import ValidationError
    procedure = tryton['procedure']
    for name, value in values.items():
        setattr(procedure, name, value)
    with pytest.raises(ValidationError) as info:
        procedure.save()
    assert error in str(info.value)
    procedure.reload()
    assert procedure.segment_repeat_late_count == 2
    assert procedure.segment_high_risk_late_count == 6


def test_template_preview_on_a_real_party(tryton, garages):
    from proteus import Model, Wizard
    ModelData = Model.get('ir.model.data')
    Template = Model.get('account.dunning.template')
    reliable, _ = garages
    template = Template(ModelData.get_id(
            'dunning_advanced', 'template_overdue_gentle', {}))
    preview = Wizard('account.dunning.template.preview', [template])
    assert preview.form.level.name == "Overdue 3 days"
    preview.form.party = reliable
    preview.form.date = days(3)
    preview.execute('preview')
    assert preview.form.recipient == 'fiable@garage.example'
    assert "Garage Fiable" in preview.form.body
    assert "${" not in preview.form.body + preview.form.subject
