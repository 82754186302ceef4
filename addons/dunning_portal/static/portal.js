// The balance page follows the ledger: on PostgreSQL it long-polls the
// bus (/updates), elsewhere it polls /balance.json; when the balance's
// fingerprint changes, the totals and invoices are fetched and swapped in
// place. A notice is dismissed without reloading the page.
(function () {
  'use strict';

  function fingerprintOf(container) {
    var inner = container.querySelector('[data-fingerprint]');
    return inner ? inner.getAttribute('data-fingerprint') : '';
  }

  function getJSON(url) {
    return fetch(url, {credentials: 'same-origin', cache: 'no-store',
        headers: {'Accept': 'application/json'}})
      .then(function (response) {
        if (response.status === 401 || response.redirected) {
          throw new Error('login');
        }
        if (!response.ok) { throw new Error(response.status); }
        return response.json();
      });
  }

  function refresh(container) {
    return fetch(container.getAttribute('data-fragment'),
        {credentials: 'same-origin', cache: 'no-store'})
      .then(function (response) {
        if (response.redirected || !response.ok) { throw new Error('login'); }
        return response.text();
      })
      .then(function (html) {
        var focused = document.activeElement;
        var hadFocus = focused && container.contains(focused);
        container.innerHTML = html;
        container.classList.remove('updated');
        void container.offsetWidth;
        container.classList.add('updated');
        if (hadFocus) { container.setAttribute('tabindex', '-1'); container.focus(); }
      });
  }

  function follow(container) {
    var mode = container.getAttribute('data-live');
    var url = container.getAttribute('data-url');
    var interval = parseInt(container.getAttribute('data-interval'), 10) || 10000;
    var last = '';
    var failures = 0;

    function next(delay) { window.setTimeout(poll, delay); }

    function poll() {
      var query = url + (url.indexOf('?') < 0 ? '?' : '&')
        + 'fingerprint=' + encodeURIComponent(fingerprintOf(container))
        + (last ? '&last=' + encodeURIComponent(last) : '');
      getJSON(query)
        .then(function (data) {
          failures = 0;
          if (data.last) { last = data.last; }
          if (data.fingerprint && data.fingerprint !== fingerprintOf(container)) {
            return refresh(container);
          }
        })
        .then(function () { next(mode === 'bus' ? 0 : interval); })
        .catch(function (error) {
          if (error.message === 'login') { return; }
          failures += 1;
          next(Math.min(60000, interval * failures));
        });
    }
    next(mode === 'bus' ? 0 : interval);
  }

  function dismissible(form) {
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      fetch(form.action, {method: 'POST', credentials: 'same-origin',
          body: new FormData(form)})
        .then(function (response) {
          if (!response.ok) { throw new Error(response.status); }
          var banner = form.closest('[data-notice]');
          var main = document.getElementById('main');
          banner.parentNode.removeChild(banner);
          main.focus();
        })
        .catch(function () { form.submit(); });
    });
  }

  document.addEventListener('DOMContentLoaded', function () {
    var container = document.getElementById('balance');
    if (container && window.fetch) { follow(container); }
    Array.prototype.forEach.call(
      document.querySelectorAll('form[data-dismiss]'), dismissible);
  });
}());
