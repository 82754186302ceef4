"""The customer's payment plans: propose one or a new date, see its schedule
before accepting it, then follow what is paid."""
import datetime as dt
from http import HTTPStatus

from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.transaction import Transaction

from .portal import route

# How often the instalments fall due: (months, days) between two of them.
FREQUENCIES = {
    'month': (1, 0),
    'two_weeks': (0, 14),
    'week': (0, 7),
    }
# Above this a count is no number of instalments but a mistake, refused
# before any schedule is computed.
COUNT_CEILING = 360


def read_proposal(values, limits):
    """Return (proposal, errors) from the form's values: the invoice ids,
    the number of instalments, their frequency and the new date"""
    errors = []
    try:
        invoice_ids = [int(i) for i in values.getlist('invoice')]
    except ValueError:
        invoice_ids = []
        errors.append(gettext('dunning_portal.msg_plan_invoice_not_open'))
    proposal = {'invoice_ids': invoice_ids, 'mode': values.get('mode'),
        'count': 1, 'months': 0, 'days': 0, 'new_date': None,
        'frequency': values.get('frequency') or 'month',
        'count_text': (values.get('count') or '').strip(),
        'date_text': (values.get('new_date') or '').strip()}
    if proposal['mode'] == 'date':
        try:
            proposal['new_date'] = dt.date.fromisoformat(
                proposal['date_text'])
        except ValueError:
            errors.append(gettext('dunning_portal.msg_plan_bad_date',
                    value=proposal['date_text']))
    else:
        proposal['mode'] = 'instalments'
        try:
            proposal['count'] = int(proposal['count_text'])
        except ValueError:
            proposal['count'] = 0
        if not 1 <= proposal['count'] <= COUNT_CEILING:
            errors.append(gettext('dunning_portal.msg_plan_bad_count',
                    value=proposal['count_text'],
                    maximum=limits.max_instalments if limits else 1))
        if proposal['frequency'] not in FREQUENCIES:
            errors.append(gettext('dunning_portal.msg_plan_bad_frequency'))
        else:
            proposal['months'], proposal['days'] = FREQUENCIES[
                proposal['frequency']]
    return proposal, errors


def schedule_key(plan):
    "What the customer saw: accepting checks it did not change since"
    return ';'.join(
        [str(plan.total)]
        + [f'{l.line.id}' for l in plan.lines]
        + [f'{i.date.isoformat()}={i.amount}' for i in plan.instalments])


@route('/plans/new', methods=('GET', 'POST'))
def new_plan(request, pool, portal):
    """Choose the invoices and the instalments or a new date, see the
    schedule, accept it"""
    Plan = pool.get('account.dunning.plan')
    Currency = pool.get('currency.currency')
    Invoice = pool.get('account.invoice')
    date = pool.get('ir.date').today()
    company, party = portal.company, portal.party
    with Transaction().set_context(company=company.id):
        procedure = party.dunning_procedure
    limits = procedure.plan_limits if procedure else None
    available, refused = Plan.plannable(company, party, date)
    currencies = {c.id: c for c in Currency.browse(
            list({i['currency'] for i in available.values()}))}
    invoices = sorted(available.values(),
        key=lambda i: (i['maturity_date'] or date, i['id']))
    refusal = Plan.refusal(company, party, procedure, date)
    values = request.form if request.method == 'POST' else request.args
    proposal, problems = read_proposal(values, limits)
    plan, offers = None, []
    asked = request.method == 'POST' or 'mode' in values
    if asked and not problems and not refusal:
        plan, problems = Plan.prepare(company, party,
            proposal['invoice_ids'], date, count=proposal['count'],
            months=proposal['months'], days=proposal['days'],
            new_date=proposal['new_date'])
    if plan is not None:
        chosen = sorted({l.invoice.id for l in plan.lines})
        offers = [{'number': available[i]['number'], 'discount': discount,
                'amount': amount, 'deadline': deadline,
                'currency': plan.currency}
            for i, (discount, amount, deadline) in sorted(
                Invoice.early_discount_offers(
                    Invoice.browse(chosen), date).items())]
    if request.method == 'POST' and plan is not None and not problems:
        if values.get('schedule') != schedule_key(plan):
            problems = [gettext('dunning_portal.msg_plan_changed')]
        else:
            try:
                plan.save()
                Plan.accept([plan], portal.user, request.remote_addr,
                    request.user_agent.string)
            except UserError as exception:
                Transaction().rollback()
                problems = [exception.message]
            else:
                return portal.redirect(f'plans/{plan.id}')
    status = HTTPStatus.BAD_REQUEST if asked and (
        problems or refusal) else HTTPStatus.OK
    return portal.render('plan_new.html', status=status,
        invoices=invoices, currencies=currencies, refused=refused,
        refusal=refusal, limits=limits, proposal=proposal,
        chosen=set(proposal['invoice_ids']), problems=problems, plan=plan,
        schedule=schedule_key(plan) if plan else '', offers=offers,
        today=date, frequencies=FREQUENCIES)


@route('/plans')
def plans(request, pool, portal):
    Plan = pool.get('account.dunning.plan')
    return portal.render('plans.html', plans=Plan.search([
                ('party', '=', portal.party.id),
                ('company', '=', portal.company.id),
                ('state', '!=', 'proposed'),
                ]))


@route('/plans/<int:plan_id>')
def plan(request, pool, portal, plan_id):
    "The schedule of one of the customer's plans and what is paid"
    Plan = pool.get('account.dunning.plan')
    plans = Plan.search([
            ('id', '=', plan_id),
            ('party', '=', portal.party.id),
            ('company', '=', portal.company.id),
            ('state', '!=', 'proposed'),
            ], limit=1)
    if not plans:
        portal.not_found()
    plan, = plans
    invoices = sorted({l.invoice.number for l in plan.lines if l.invoice})
    return portal.render('plan.html', plan=plan, invoices=invoices,
        instalments=plan.instalments)
