// A small Stripe.js for the tests: the calls the portal's card page makes
// (Stripe(key), elements({clientSecret}), create('payment').mount(selector),
// confirmPayment({elements, confirmParams: {return_url}})), talking to the
// local Stripe server instead of api.stripe.com. Its card form is plain
// inputs where Stripe's Payment Element has its iframe.
(function () {
    'use strict';
    const API = '@API_BASE@/v1';

    function field(id, label, autocomplete, inputmode) {
        const wrapper = document.createElement('p');
        const labelNode = document.createElement('label');
        labelNode.htmlFor = id;
        labelNode.textContent = label;
        const input = document.createElement('input');
        input.id = id;
        input.autocomplete = autocomplete;
        input.inputMode = inputmode;
        wrapper.append(labelNode, input);
        return wrapper;
    }

    function Stripe(key) {
        function post(path, values) {
            const body = new URLSearchParams({key: key, ...values});
            return fetch(API + path, {method: 'POST', body: body})
                .then((response) => response.json());
        }
        return {
            elements: function (options) {
                const secret = options.clientSecret;
                return {
                    clientSecret: secret,
                    create: function () {
                        return {
                            mount: function (selector) {
                                const node = document.querySelector(selector);
                                node.append(
                                    field('stripe-card-number', 'Card number',
                                        'cc-number', 'numeric'),
                                    field('stripe-card-expiry',
                                        'Expiry (MM/YY)', 'cc-exp', 'numeric'),
                                    field('stripe-card-cvc', 'CVC', 'cc-csc',
                                        'numeric'));
                            },
                        };
                    },
                };
            },
            confirmPayment: function (options) {
                const secret = options.elements.clientSecret;
                const intent = secret.split('_secret_')[0];
                const expiry = document.getElementById(
                    'stripe-card-expiry').value.split('/');
                return post('/payment_intents/' + intent + '/confirm', {
                    client_secret: secret,
                    return_url: options.confirmParams.return_url,
                    'payment_method_data[type]': 'card',
                    'payment_method_data[card][number]': document
                        .getElementById('stripe-card-number').value,
                    'payment_method_data[card][exp_month]': expiry[0] || '',
                    'payment_method_data[card][exp_year]': expiry[1] || '',
                    'payment_method_data[card][cvc]': document
                        .getElementById('stripe-card-cvc').value,
                }).then(function (result) {
                    if (result.error) {
                        return {error: result.error};
                    }
                    const url = new URL(options.confirmParams.return_url);
                    url.searchParams.set('payment_intent', result.id);
                    url.searchParams.set(
                        'payment_intent_client_secret', secret);
                    url.searchParams.set('redirect_status', result.status);
                    window.location.assign(url.toString());
                    return new Promise(function () {});
                });
            },
        };
    }
    window.Stripe = Stripe;
}());
