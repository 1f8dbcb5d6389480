// red's e-prescription page: starts a batch ("sign all") and follows it until every
// prescription has its outcome. It writes text only (textContent), never markup.
'use strict';

(function () {
  const form = document.getElementById('sign');
  const button = document.getElementById('sign-all');
  const token = form.elements.csrf.value;
  const notice = document.getElementById('notice');
  const pendingTable = document.getElementById('pending');
  const pendingEmpty = document.getElementById('pending-empty');
  const pendingError = document.getElementById('pending-error');
  const batchSection = document.getElementById('batch');
  const phase = document.getElementById('phase');
  const progress = document.getElementById('progress');
  const outcome = document.getElementById('outcome');

  function show(el, text) {
    el.textContent = text || '';
    el.hidden = !text;
  }

  function cell(tr, cls, text) {
    const td = document.createElement('td');
    td.className = cls;
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }

  function row(r) {
    const tr = document.createElement('tr');
    tr.dataset.id = r.id;
    tr.dataset.state = r.state;
    const patient = cell(tr, 'patient', r.patient);
    if (r.birthday) {
      const born = document.createElement('span');
      born.className = 'born';
      born.textContent = 'born ' + r.birthday;
      patient.append(' ', born);
    }
    cell(tr, 'medication', r.medication);
    cell(tr, 'date', r.date);
    const status = cell(tr, 'status', r.state);
    if (r.reason) {
      const reason = document.createElement('span');
      reason.className = 'reason';
      reason.textContent = r.reason;
      status.append(' ', reason);
    }
    return tr;
  }

  function fill(table, rows) {
    table.tBodies[0].replaceChildren(...rows.map(row));
  }

  function render(s) {
    const pending = s.pending || [];
    fill(pendingTable, pending);
    pendingTable.hidden = pending.length === 0;
    pendingEmpty.hidden = pending.length !== 0 || Boolean(s.error);
    show(pendingError, s.error);
    const b = s.batch;
    const running = Boolean(b && b.running);
    button.disabled = running || pending.length === 0;
    document.body.dataset.batch = b ? b.phase : '';
    if (!b) {
      batchSection.hidden = true;
      return;
    }
    batchSection.hidden = false;
    phase.textContent = b.message;
    phase.dataset.phase = b.phase;
    progress.max = Math.max(b.total, 1);
    progress.value = running ? b.done : progress.max;
    fill(outcome, b.items || []);
  }

  // answer reads a JSON answer, or says what went wrong.
  async function answer(resp) {
    let body = null;
    try {
      body = await resp.json();
    } catch (e) {
      body = null;
    }
    if (!resp.ok) {
      throw new Error((body && body.error) || 'the server answered ' + resp.status + ' ' + resp.statusText);
    }
    return body;
  }

  let polling = false;

  async function poll() {
    if (polling) {
      return;
    }
    polling = true;
    try {
      for (;;) {
        const s = await answer(await fetch('state', {
          headers: { 'Accept': 'application/json', 'X-CSRF-Token': token },
          cache: 'no-store',
        }));
        render(s);
        if (!s.batch || !s.batch.running) {
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    } catch (e) {
      show(notice, 'The page lost contact with red: ' + e.message);
    } finally {
      polling = false;
    }
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    show(notice, '');
    button.disabled = true;
    const body = {};
    if (form.elements.card && form.elements.card.value) {
      body.card = form.elements.card.value;
    }
    try {
      render(await answer(await fetch('sign', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'Accept': 'application/json', 'X-CSRF-Token': token },
        body: JSON.stringify(body),
        cache: 'no-store',
      })));
    } catch (e) {
      show(notice, e.message);
    }
    poll();
  });

  poll();
})();
