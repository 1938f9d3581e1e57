/* otpgate web UI: progressive enhancement only; every page works without it.
 * Trusted-Types safe: markup is never built from strings; only textContent and classList. */
(function () {
  'use strict';

  var doc = document;

  // 5. Mark that JS is running (CSS hides `.js-hide` elements).
  doc.documentElement.classList.add('js');

  // 1. Confirmation for dangerous actions: `data-confirm` on the submit button or the form.
  doc.addEventListener('submit', function (ev) {
    var form = ev.target;
    if (!(form instanceof HTMLFormElement)) return;
    var submitter = ev.submitter;
    if (submitter === undefined) {
      // Browsers without SubmitEvent.submitter: fall back to the form's first confirming button.
      submitter = form.querySelector('button[data-confirm], input[type="submit"][data-confirm]');
    }
    var text = (submitter && submitter.getAttribute('data-confirm')) || form.getAttribute('data-confirm');
    if (text && !window.confirm(text)) {
      ev.preventDefault();
      return;
    }
    // 6. One submission at a time: a second click while the first is on its way (a double
    // click on "Send test SMS" sent two SMS) is dropped; the form shows it is busy.
    if (form.method.toLowerCase() === 'post') {
      if (form.getAttribute('aria-busy') === 'true') {
        ev.preventDefault();
        return;
      }
      form.setAttribute('aria-busy', 'true');
      if (submitter) submitter.classList.add('busy');
    }
  });

  // A page restored from the back/forward cache is not busy any more.
  window.addEventListener('pageshow', function (ev) {
    if (!ev.persisted) return;
    doc.querySelectorAll('form[aria-busy="true"]').forEach(function (f) {
      f.removeAttribute('aria-busy');
      f.querySelectorAll('.busy').forEach(function (b) { b.classList.remove('busy'); });
    });
  });

  // 2. `select[data-autosubmit]` submits its form on change (the no-JS "Choose" button is `.js-hide`).
  doc.addEventListener('change', function (ev) {
    var sel = ev.target;
    if (!(sel instanceof HTMLSelectElement) || !sel.hasAttribute('data-autosubmit')) return;
    var form = sel.form;
    if (!form) return;
    if (typeof form.requestSubmit === 'function') {
      // Submit via the hidden button when there is one, so its name/value is sent as without JS.
      var btn = form.querySelector('.js-hide[type="submit"], button.js-hide:not([type])');
      form.requestSubmit(btn && btn.form === form ? btn : undefined);
    } else {
      form.submit();
    }
  });

  // 3. Live SMS segment counter.
  var meta = doc.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute('content') || '' : '';

  function segmentCounter(area) {
    var url = area.getAttribute('data-count-url');
    var output = doc.getElementById(area.getAttribute('data-count-output') || '');
    if (!url || !output) return;
    var timer = 0;
    var seq = 0;
    var inflight = null;

    async function update() {
      var mine = ++seq;
      if (inflight) inflight.abort();
      inflight = typeof AbortController === 'function' ? new AbortController() : null;
      try {
        var res = await fetch(url, {
          method: 'POST',
          credentials: 'same-origin',
          headers: {
            'Content-Type': 'application/x-www-form-urlencoded',
            'Accept': 'application/json',
            'X-CSRF-Token': csrf
          },
          body: new URLSearchParams([['text', area.value], ['csrf', csrf]]).toString(),
          signal: inflight ? inflight.signal : undefined
        });
        if (!res.ok) return;
        var data = await res.json();
        if (mine !== seq || !data || typeof data.summary !== 'string') return;
        var text = data.summary;
        var warnings = Array.isArray(data.warnings)
          ? data.warnings.filter(function (w) { return typeof w === 'string' && w !== ''; })
          : [];
        if (warnings.length) text += ' \u2014 ' + warnings.join(' ');
        output.textContent = text;
        output.classList.toggle('many', Number(data.segments) > 1);
      } catch (_) {
        // Network error, abort or bad JSON: keep the server-rendered output.
      }
    }

    area.addEventListener('input', function () {
      clearTimeout(timer);
      timer = setTimeout(update, 200);
    });
  }

  doc.querySelectorAll('textarea[data-count-url]').forEach(segmentCounter);

  // 5. A table wider than its box scrolls sideways: make the box reachable by keyboard and
  // name it after the table's caption (only while it actually scrolls).
  function scrollableTables() {
    doc.querySelectorAll('.table-wrap').forEach(function (wrap) {
      if (wrap.scrollWidth > wrap.clientWidth + 1) {
        var caption = wrap.querySelector('caption');
        wrap.setAttribute('tabindex', '0');
        wrap.setAttribute('role', 'region');
        wrap.setAttribute('aria-label', caption ? caption.textContent : 'Table');
      } else {
        wrap.removeAttribute('tabindex');
        wrap.removeAttribute('role');
        wrap.removeAttribute('aria-label');
      }
    });
  }
  scrollableTables();
  window.addEventListener('resize', scrollableTables);

  // 6b. A page rendered by an action that failed (a test SMS) puts the address of the page it
  // belongs to back in the address bar: a reload shows that page, it does not post again.
  var home = doc.querySelector('[data-page-url]');
  if (home && window.history && typeof window.history.replaceState === 'function') {
    var to = home.getAttribute('data-page-url') || '';
    if (to.charAt(0) === '/' && to.charAt(1) !== '/') window.history.replaceState(null, '', to);
  }

  // 4. Move focus to the error summary so screen-reader and keyboard users land on it.
  var errors = doc.querySelector('.errors');
  if (errors) {
    if (!errors.hasAttribute('tabindex')) errors.setAttribute('tabindex', '-1');
    errors.focus();
  }
})();
