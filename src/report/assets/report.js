// Draws the operation timeline from the embedded columns, one window at a time, so pages of
// 100,000 ops stay responsive. No network, no libraries.
(function () {
  'use strict';
  var errorBox = document.getElementById('js-errors');
  window.addEventListener('error', function (e) {
    errorBox.textContent += 'script error: ' + e.message + '\n';
  });
  var D = JSON.parse(document.getElementById('timeline-data').textContent);
  var N = D.start.length;
  var MAX_DRAWN = 6000;
  var LEFT = 110, RIGHT = 12, TOP = 22, ROW = 16, BAR = 12;
  var OUT = { o: 'ok', f: 'fail', i: 'info' };
  var BAND = { partition: '#f6b26b', loss: '#b4a7d6', pause: '#9fc5e8', kill: '#ea9999', clock: '#b6d7a8' };
  var endUs = Math.max(D.end_us, 1);
  var ends = new Array(N), maxDur = 0;
  for (var i = 0; i < N; i++) {
    ends[i] = D.dur[i] < 0 ? endUs : D.start[i] + D.dur[i];
    maxDur = Math.max(maxDur, ends[i] - D.start[i]);
  }
  var el = document.getElementById('timeline');
  var slider = document.getElementById('tl-pos');
  var sizeSel = document.getElementById('tl-size');
  var info = document.getElementById('tl-info');
  var win0 = 0, winLen = N <= 4000 ? endUs : Math.max(1000, Math.round(endUs * 3000 / N));
  var highlight = null, markTimes = [];

  function esc(s) {
    return String(s).replace(/[&<>"]/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c];
    });
  }
  function fmtS(us) { return (us / 1e6).toFixed(winLen < 2e6 ? 3 : 1); }
  function ticks(lo, hi, n) {
    var span = hi - lo, raw = span / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 5, 10].map(function (m) { return m * mag; }).find(function (s) { return span / s <= n; });
    var out = [];
    for (var t = Math.ceil(lo / step) * step; t <= hi && out.length < 50; t += step) out.push(t);
    return out;
  }
  function firstStartingAfter(t) {
    var lo = 0, hi = N;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (D.start[mid] < t) lo = mid + 1; else hi = mid; }
    return lo;
  }
  function render() {
    winLen = Math.max(10, Math.min(winLen, endUs));
    win0 = Math.max(0, Math.min(win0, endUs - winLen));
    var win1 = win0 + winLen;
    var width = Math.max(el.clientWidth || 1000, 700);
    var plotW = width - LEFT - RIGHT;
    var height = TOP + D.lanes.length * ROW + 8;
    var x = function (t) { return LEFT + (Math.max(win0, Math.min(win1, t)) - win0) / winLen * plotW; };
    var s = ['<svg xmlns="http://www.w3.org/2000/svg" width="' + width + '" height="' + height + '">'];
    D.bands.forEach(function (b) {
      if (b.end < win0 || b.start > win1) return;
      var x0 = x(b.start), x1 = x(b.end);
      s.push('<rect class="band" x="' + x0.toFixed(1) + '" y="' + (TOP - 4) + '" width="' + Math.max(1, x1 - x0).toFixed(1) +
        '" height="' + (height - TOP) + '" fill="' + (BAND[b.fault] || '#d9d9d9') + '" fill-opacity="0.55"><title>' +
        esc(b.label) + ' ' + fmtS(b.start) + '–' + fmtS(b.end) + ' s</title></rect>');
      s.push('<text x="' + (x0 + 2).toFixed(1) + '" y="' + (TOP - 6) + '" class="lane-label">' + esc(b.fault) + '</text>');
    });
    ticks(win0, win1, 10).forEach(function (t) {
      var xt = x(t).toFixed(1);
      s.push('<line x1="' + xt + '" x2="' + xt + '" y1="' + (TOP - 4) + '" y2="' + height + '" stroke="#0001"/>');
      s.push('<text x="' + xt + '" y="10" text-anchor="middle" class="lane-label">' + fmtS(t) + ' s</text>');
    });
    D.lanes.forEach(function (label, l) {
      var y = TOP + l * ROW;
      s.push('<text x="4" y="' + (y + 10) + '" class="lane-label">' + esc(label) + '</text>');
    });
    var from = firstStartingAfter(win0 - maxDur), drawn = 0, inWindow = 0;
    for (var k = from; k < N && D.start[k] <= win1; k++) {
      if (ends[k] < win0) continue;
      inWindow++;
      if (drawn >= MAX_DRAWN) continue;
      drawn++;
      var x0 = x(D.start[k]), x1 = x(ends[k]), y = TOP + D.lane[k] * ROW;
      var o = OUT[D.outcome[k]], w = Math.max(1.5, x1 - x0);
      var cls = 'op op-' + o + (highlight ? (highlight.has(k) ? ' hl' : ' dim') : '');
      var txt = D.fs[D.f[k]] + (D.keys[D.key[k]] ? ' ' + D.keys[D.key[k]] : '') + ' ' + D.value[k];
      s.push('<rect class="' + cls + '" x="' + x0.toFixed(1) + '" y="' + y + '" width="' + w.toFixed(1) + '" height="' + BAR +
        '" rx="2"><title>' + esc(txt) + ' · ' + o + ' · process ' + D.process[k] + ' · ' + fmtS(D.start[k]) + '–' +
        (D.dur[k] < 0 ? 'never returned' : fmtS(ends[k]) + ' s') + '</title></rect>');
      if (w > 7 * txt.length) {
        s.push('<text class="oplabel" x="' + (x0 + 3).toFixed(1) + '" y="' + (y + 10) + '">' + esc(txt) + '</text>');
      }
    }
    markTimes.forEach(function (t) {
      if (t < win0 || t > win1) return;
      var xt = x(t).toFixed(1);
      s.push('<line class="mark-time" x1="' + xt + '" x2="' + xt + '" y1="' + (TOP - 4) + '" y2="' + height +
        '" stroke="#c00" stroke-width="2" stroke-dasharray="4 3"><title>event at ' + fmtS(t) + ' s</title></line>');
    });
    s.push('</svg>');
    el.innerHTML = s.join('');
    info.textContent = fmtS(win0) + '–' + fmtS(win1) + ' s of ' + fmtS(endUs) + ' s · ' + inWindow + ' ops in view' +
      (inWindow > drawn ? ' (first ' + drawn + ' drawn: zoom in to see all)' : '') +
      (D.total_ops > N ? ' · sampled: ' + N + ' of ' + D.total_ops + ' ops embedded (every op an anomaly names is kept)' : '');
    slider.value = endUs > winLen ? Math.round(win0 / (endUs - winLen) * 1000) : 0;
    document.body.dataset.timeline = 'drawn';
  }
  slider.addEventListener('input', function () {
    win0 = (endUs - winLen) * slider.value / 1000; render();
  });
  sizeSel.addEventListener('change', function () {
    if (sizeSel.value === 'zoom') return;
    var centre = win0 + winLen / 2;
    winLen = sizeSel.value === 'all' ? endUs : Number(sizeSel.value) * 1e6;
    win0 = centre - winLen / 2; render();
  });
  document.getElementById('tl-prev').addEventListener('click', function () { win0 -= winLen / 2; render(); });
  document.getElementById('tl-next').addEventListener('click', function () { win0 += winLen / 2; render(); });
  document.getElementById('tl-clear').addEventListener('click', function () { highlight = null; markTimes = []; render(); });
  var marks = {};
  D.marks.forEach(function (m) { marks[m.id] = m; });
  function showMark(id, scroll) {
    var m = marks[id];
    if (!m || !(m.ops.length || m.times.length)) return;
    var lo = Infinity, hi = 0;
    m.ops.forEach(function (k) { lo = Math.min(lo, D.start[k]); hi = Math.max(hi, ends[k]); });
    m.times.forEach(function (t) { lo = Math.min(lo, t); hi = Math.max(hi, t); });
    var pad = Math.max((hi - lo) * 0.6, 2000);
    win0 = lo - pad; winLen = hi - lo + 2 * pad;
    highlight = new Set(m.ops);
    sizeSel.value = 'zoom';
    markTimes = m.times;
    render();
    if (scroll) document.getElementById('timeline-section').scrollIntoView();
  }
  Array.prototype.forEach.call(document.querySelectorAll('button.show-mark'), function (b) {
    b.addEventListener('click', function () { showMark(b.dataset.mark, true); });
  });
  window.addEventListener('resize', render);
  render();
  // `report.html#mark=<anomaly id>` opens with that anomaly's ops highlighted (used by links).
  var m = /^#mark=(.+)$/.exec(window.location.hash);
  if (m) showMark(decodeURIComponent(m[1]), false);
  document.body.dataset.rendered = 'ok';
})();
