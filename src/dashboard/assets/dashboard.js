/* global document, uPlot */
// Penny's dashboard script, served as a file (the CSP allows no inline script). It writes the
// local time into each <time>'s title (the page shows UTC), and draws the home page's chart from
// the JSON the page carries in a data attribute.
(function () {
  'use strict';

  function localTimes(root) {
    root.querySelectorAll('time[datetime]').forEach(function (element) {
      var at = new Date(element.getAttribute('datetime'));
      if (!isNaN(at.getTime())) element.title = at.toLocaleString() + ' (your local time)';
    });
  }

  function drawChart(root) {
    var holder = root.querySelector('#chart[data-series]');
    if (holder === null || typeof uPlot === 'undefined' || holder.dataset.drawn === 'true') return;
    holder.dataset.drawn = 'true';
    var data = JSON.parse(holder.dataset.series);
    var width = Math.max(320, holder.clientWidth || 800);
    new uPlot({
      width: width, height: 300,
      series: [{}, { label: 'Payments', stroke: '#1565c0', fill: 'rgba(21, 101, 192, 0.15)' },
        { label: 'Succeeded', stroke: '#2e7d32' }],
      axes: [{}, { label: 'per hour' }],
      scales: { x: { time: true } },
    }, [data.hours, data.payments, data.succeeded], holder);
  }

  function enhance(root) {
    localTimes(root);
    drawChart(root);
  }

  document.addEventListener('DOMContentLoaded', function () { enhance(document); });
  document.addEventListener('htmx:load', function (event) { enhance(event.target || document); });
}());
