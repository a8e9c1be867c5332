// Filters by component, block, driver and verdict, without a server. Without JavaScript the
// form stays hidden and every row is shown.
(function () {
  var form = document.getElementById('filters');
  if (!form) { return; }
  form.hidden = false;
  var selects = form.querySelectorAll('select[data-filter]');
  var shown = document.getElementById('shown');
  function apply() {
    var want = {};
    selects.forEach(function (s) { want[s.dataset.filter] = s.value; });
    var visible = 0, total = 0;
    document.querySelectorAll('[data-trial]').forEach(function (el) {
      var keep = Object.keys(want).every(function (k) { return !want[k] || el.dataset[k] === want[k]; });
      el.hidden = !keep;
      if (el.tagName === 'TR') { total += 1; if (keep) { visible += 1; } }
    });
    document.querySelectorAll('tbody[data-rule]').forEach(function (body) {
      body.hidden = !body.querySelector('tr[data-trial]:not([hidden])');
    });
    document.querySelectorAll('#matrix tr[data-component]').forEach(function (row) {
      row.hidden = !!want.component && row.dataset.component !== want.component;
    });
    shown.textContent = visible + ' of ' + total + ' trials shown';
  }
  selects.forEach(function (s) { s.addEventListener('change', apply); });
  apply();
  // How long the page took to be ready, for whoever measures it.
  document.body.dataset.readyMs = String(Math.round(performance.now()));
})();
