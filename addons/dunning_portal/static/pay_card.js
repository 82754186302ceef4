// The card page: Stripe's Payment Element on the payment's PaymentIntent,
// read from the form's data attributes (no inline script: the portal's
// Content-Security-Policy allows scripts from files only).
(function () {
    'use strict';
    const form = document.getElementById('payment-form');
    const error = document.getElementById('payment-error');
    const button = document.getElementById('payment-submit');
    function show(message) {
        error.textContent = message;
        error.hidden = false;
        button.disabled = false;
    }
    if (typeof Stripe === 'undefined') {
        show(form.dataset.unavailable);
        button.disabled = true;
        return;
    }
    const stripe = Stripe(form.dataset.key);
    const elements = stripe.elements({clientSecret: form.dataset.secret});
    elements.create('payment').mount('#payment-element');
    form.addEventListener('submit', function (event) {
        event.preventDefault();
        button.disabled = true;
        error.hidden = true;
        stripe.confirmPayment({
            elements: elements,
            confirmParams: {return_url: form.dataset.returnUrl},
        }).then(function (result) {
            if (result.error) {
                show(result.error.message);
            }
        });
    });
}());
