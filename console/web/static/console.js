// The live event feed: server-sent events from /events/stream, one table row each. Every value is
// set with textContent, never parsed as HTML – event fields come from mail and remote servers.
'use strict';
(function () {
  const table = document.getElementById('events');
  if (!table) return;
  const rows = table.tBodies[0];
  const status = document.getElementById('feed-status');
  const kMaxRows = 500;
  let received = 0;

  function cell(row, text, className) {
    const td = row.insertCell(-1);
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function show(event) {
    const row = rows.insertRow(0);
    row.className = 'event ' + event.kind;
    cell(row, new Date(event.time).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC'));
    cell(row, event.kind, 'state ' + event.kind);
    const id = cell(row, '');
    const link = document.createElement('a');
    link.href = '/message/' + encodeURIComponent(event.queue_id);
    link.textContent = event.queue_id;
    link.className = 'qid';
    id.appendChild(link);
    cell(row, event.sender);
    cell(row, event.recipient);
    cell(row, event.smtp_code ? event.smtp_code + ' ' + event.dsn_status + ' ' + event.reason : event.reason, 'reason');
    cell(row, event.relay);
    while (rows.rows.length > kMaxRows) rows.deleteRow(-1);
    received += 1;
    status.textContent = received + ' event(s) since this page opened' +
        (event.missed ? '; ' + event.missed + ' missed (the feed was too slow)' : '');
  }

  const source = new EventSource(table.dataset.stream);
  source.addEventListener('ready', function () {
    if (received === 0) status.textContent = 'Connected; waiting for events.';
  });
  source.addEventListener('queue', function (message) { show(JSON.parse(message.data)); });
  source.addEventListener('error', function () {
    status.textContent = 'Disconnected; reconnecting…';
  });
})();
