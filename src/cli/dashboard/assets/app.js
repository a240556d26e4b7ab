// The Rollouts dashboard: a list of the Rollouts and a view of one, kept live by server-sent
// events. Hand-written, no framework, no build step. Text from the cluster is only ever set
// as text (textContent), never parsed as HTML; the one SVG the server draws (the planned
// timeline) is parsed as SVG and imported, under a Content-Security-Policy without inline
// scripts.
'use strict';

(() => {
  const TOKEN_KEY = 'rollouts-dashboard-token';
  const THEME_KEY = 'rollouts-dashboard-theme';
  const ICONS = { Healthy: '\u2714', Progressing: '\u25CC', Paused: '\u2016', Degraded: '\u2716', Error: '!', InvalidSpec: '!', Unknown: '?' };
  const STATUSES = ['Healthy', 'Progressing', 'Paused', 'Degraded'];

  const state = {
    info: null,
    token: null,
    streams: [],
    rows: new Map(),
    filter: { text: '', statuses: new Set() },
    view: null,
    key: null,
    namespaces: [],
    firstListRender: true,
  };

  // ---------------------------------------------------------------------------------------
  // DOM helpers

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  function s(tag, attrs, ...children) {
    const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  function setAttrs(el, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') el.textContent = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }

  function append(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }

  const $ = (sel, root) => (root || document).querySelector(sel);

  // Replaces an element's children (null and false children are left out).
  function fill(el, ...children) {
    el.replaceChildren();
    append(el, children);
  }

  function statusBadge(status, message) {
    const st = status || 'Unknown';
    return h('span', { class: `status status-${st}`, title: message || null },
      h('span', { class: 'icon', 'aria-hidden': 'true', text: ICONS[st] || '?' }), st);
  }

  function ageText(ts, now) {
    if (!ts) return '';
    const secs = Math.max(0, Math.floor((now - Date.parse(ts)) / 1000));
    if (secs < 120) return `${secs}s`;
    const m = Math.floor(secs / 60);
    if (m < 10) return `${m}m${secs % 60 ? `${secs % 60}s` : ''}`;
    if (m < 180) return `${m}m`;
    const hrs = Math.floor(m / 60);
    if (hrs < 48) return `${hrs}h`;
    return `${Math.floor(hrs / 24)}d`;
  }

  function durationText(secs) {
    secs = Math.max(0, Math.round(secs));
    if (secs < 60) return `${secs}s`;
    const m = Math.floor(secs / 60);
    if (m < 60) return `${m}m${secs % 60}s`;
    return `${Math.floor(m / 60)}h${m % 60}m`;
  }

  function stepText(step) {
    if (!step) return '\u2013';
    return `${step.current}/${step.count}`;
  }

  function encodeKey(ns, name) {
    return `${encodeURIComponent(ns)}/${encodeURIComponent(name)}`;
  }

  // ---------------------------------------------------------------------------------------
  // Notices

  function toast(text, error) {
    const note = h('div', { class: error ? 'note error' : 'note', text });
    $('#toast').append(note);
    setTimeout(() => note.remove(), error ? 12000 : 5000);
  }

  function setBanner(problems) {
    const banner = $('#banner');
    fill(banner, ...(problems || []).map((p) => h('p', { text: p })));
    banner.hidden = !problems || problems.length === 0;
  }

  function setLive(on, text) {
    const live = $('#live');
    live.className = `live ${on ? 'on' : 'off'}`;
    live.textContent = text;
  }

  // ---------------------------------------------------------------------------------------
  // Streams

  function closeStreams() {
    for (const es of state.streams) es.close();
    state.streams = [];
  }

  function stream(url, handlers) {
    const es = new EventSource(url);
    es.addEventListener('open', () => setLive(true, 'live'));
    es.addEventListener('error', () => {
      if (es.readyState === EventSource.CLOSED) setLive(false, 'disconnected');
      else setLive(false, 'reconnecting\u2026');
    });
    for (const [event, fn] of Object.entries(handlers)) {
      es.addEventListener(event, (e) => {
        setLive(true, 'live');
        fn(JSON.parse(e.data));
      });
    }
    state.streams.push(es);
    return es;
  }

  // ---------------------------------------------------------------------------------------
  // Actions

  const dialog = () => $('#confirm');

  function confirmAction(title, text, fields) {
    return new Promise((resolve) => {
      const d = dialog();
      $('#confirm-title').textContent = title;
      $('#confirm-text').textContent = text;
      const inputs = (fields || []).map((f) => {
        const input = h('input', { id: `field-${f.name}`, name: f.name, value: f.value || '', autocomplete: 'off', spellcheck: 'false' });
        return { f, input, label: h('label', { for: `field-${f.name}` }, f.label, input) };
      });
      fill($('#confirm-fields'), ...inputs.map((i) => i.label));
      const done = (ok) => {
        $('#confirm-ok').onclick = null;
        $('#confirm-cancel').onclick = null;
        d.onclose = null;
        if (d.open) d.close();
        if (!ok) return resolve(null);
        const values = {};
        for (const i of inputs) values[i.f.name] = i.input.value;
        resolve(values);
      };
      $('#confirm-ok').onclick = () => done(true);
      $('#confirm-cancel').onclick = () => done(false);
      d.onclose = () => done(false);
      d.showModal();
      (inputs[0] ? inputs[0].input : $('#confirm-ok')).focus();
    });
  }

  async function act(ns, name, action, body) {
    const url = `api/v1/rollouts/${encodeKey(ns, name)}/${action}`;
    let res;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-rollouts-token': state.token || '' },
        body: JSON.stringify(body || {}),
        credentials: 'same-origin',
        cache: 'no-store',
      });
    } catch (e) {
      toast(`The dashboard could not be reached: ${e.message}`, true);
      return false;
    }
    let data = {};
    try {
      data = await res.json();
    } catch (e) {
      data = { error: `${res.status} ${res.statusText}` };
    }
    if (res.ok) toast(data.message || 'done');
    else toast(data.error || `${res.status} ${res.statusText}`, true);
    return res.ok;
  }

  const ACTIONS = {
    promote: { label: 'Promote', text: (n) => `Promote rollout ${n}: end the current pause (or step) and go on with the next step.` },
    'promote-full': { label: 'Promote full', text: (n) => `Fully promote rollout ${n}: skip every remaining step, pause and analysis, and make the new version stable now.` },
    abort: { label: 'Abort', danger: true, text: (n) => `Abort rollout ${n}: scale the new version down and send all traffic back to the stable version.` },
    retry: { label: 'Retry', text: (n) => `Retry rollout ${n}: go to the new version again, from the first step.` },
    pause: { label: 'Pause', text: (n) => `Pause rollout ${n} (sets spec.paused): it stops at the current step until promoted.` },
    restart: { label: 'Restart', text: (n) => `Restart the pods of rollout ${n} (sets spec.restartAt): they are evicted and recreated, a few at a time.` },
  };

  async function runAction(ns, name, action, body, title, text, fields) {
    const a = ACTIONS[action];
    const values = await confirmAction(title || `${a.label}?`, text || a.text(name), fields);
    if (values === null) return;
    await act(ns, name, action, Object.assign({}, body || {}, values));
  }

  function actionButton(ns, name, action, enabled, why) {
    const a = ACTIONS[action];
    return h('button', {
      type: 'button',
      class: `btn${a.danger ? ' danger' : ''}`,
      id: `act-${action}`,
      'data-action': action,
      disabled: !enabled,
      title: enabled ? null : why,
      onclick: () => runAction(ns, name, action),
    }, a.label);
  }

  // ---------------------------------------------------------------------------------------
  // Namespace switcher

  async function loadNamespaces() {
    try {
      const res = await fetch('api/v1/namespaces', { cache: 'no-store' });
      const data = await res.json();
      state.namespaces = data.namespaces || [];
    } catch (e) {
      state.namespaces = [];
    }
    renderNamespaceSwitch();
  }

  function currentNamespace() {
    return state.key ? state.key[0] : state.listNamespace;
  }

  function renderNamespaceSwitch() {
    const box = $('#ns-switch');
    const current = currentNamespace() || '';
    const go = (ns) => { location.hash = ns ? `#/ns/${encodeURIComponent(ns)}` : '#/ns/'; };
    let control;
    if (state.namespaces.length > 0) {
      const options = [];
      if (state.info.allNamespaces) options.push(h('option', { value: '', text: 'all namespaces', selected: current === '' }));
      for (const ns of state.namespaces) options.push(h('option', { value: ns, text: ns, selected: ns === current }));
      control = h('select', { id: 'ns', onchange: (e) => go(e.target.value) }, options);
    } else {
      control = h('input', { id: 'ns', value: current, size: 14, spellcheck: 'false', onchange: (e) => go(e.target.value.trim()) });
    }
    fill(box, h('label', { for: 'ns' }, 'Namespace', control));
  }

  // ---------------------------------------------------------------------------------------
  // The list

  function rowKey(r) {
    return `${r.namespace}/${r.name}`;
  }

  function podBar(row) {
    const bar = h('span', { class: 'podbar' });
    let shown = 0;
    row.replicaSets.forEach((rs, i) => {
      if (i > 0 && rs.replicas > 0) bar.append(h('span', { class: 'gap' }));
      const role = rs.roles[0] || '';
      for (let p = 0; p < rs.replicas && shown < 24; p++, shown++) {
        bar.append(h('span', { class: `pod ${role} ${p < rs.available ? '' : 'empty'}` }));
      }
    });
    const total = row.replicaSets.reduce((n, rs) => n + rs.replicas, 0);
    if (total > shown) bar.append(h('span', { class: 'pod more', text: `+${total - shown}` }));
    return bar;
  }

  function images(list) {
    return h('span', { class: 'images' }, list.map((i) =>
      h('span', { class: 'image' }, h('code', { text: i.image }), ' ',
        i.tags.map((t) => [h('span', { class: `badge role-${t}`, text: t }), ' ']))));
  }

  function renderRow(r) {
    const all = state.info.allNamespaces && !state.listNamespace;
    const weights = r.setWeight === undefined ? '\u2013' : `${r.setWeight}% / ${r.actualWeight}%`;
    const tr = h('tr', { 'data-key': rowKey(r), 'data-status': r.status },
      h('td', { class: 'state' }, statusBadge(r.status, r.message)),
      h('td', { class: 'name' },
        h('a', { href: `#/rollout/${encodeKey(r.namespace, r.name)}`, text: r.name }),
        r.message ? h('span', { class: 'msg', title: r.message, text: r.message }) : null),
      all ? h('td', { class: 'namespace', text: r.namespace }) : null,
      h('td', { text: r.strategy || '\u2013' }),
      h('td', { class: 'step num', text: stepText(r.step) }),
      h('td', { class: 'weight num', title: r.setWeight === undefined ? null : `set weight ${r.setWeight}%, actual weight ${r.actualWeight}%`, text: weights }),
      h('td', {}, images(r.images)),
      h('td', { class: 'revision num', text: r.revision || '\u2013' }),
      h('td', { class: 'pods-cell' },
        h('span', { class: 'num', text: `${r.available}/${r.desired}` }), ' ', podBar(r)),
      h('td', { class: 'age num', 'data-since': r.created || '', text: ageText(r.created, Date.now()) }));
    tr.hidden = !matches(r);
    return tr;
  }

  function matches(r) {
    const f = state.filter;
    if (f.text && !r.name.toLowerCase().includes(f.text.toLowerCase())) return false;
    if (f.statuses.size > 0 && !f.statuses.has(r.status)) return false;
    return true;
  }

  function applyFilter() {
    const body = $('#rollouts-body');
    if (!body) return;
    for (const tr of body.children) {
      const r = state.rows.get(tr.dataset.key);
      if (r) tr.hidden = !matches(r);
    }
    updateCounts();
  }

  function updateCounts() {
    const rows = [...state.rows.values()];
    const shown = rows.filter(matches).length;
    const count = $('#count');
    if (count) count.textContent = rows.length === shown ? `${rows.length} rollouts` : `${shown} of ${rows.length} rollouts`;
    for (const st of STATUSES) {
      const chip = $(`#chip-${st}`);
      if (chip) chip.querySelector('.n').textContent = rows.filter((r) => r.status === st).length;
    }
    const empty = $('#empty');
    if (empty) empty.hidden = rows.length > 0;
  }

  function upsertRow(r) {
    const body = $('#rollouts-body');
    const key = rowKey(r);
    state.rows.set(key, r);
    const tr = renderRow(r);
    const old = body.querySelector(`tr[data-key="${CSS.escape(key)}"]`);
    if (old) {
      old.replaceWith(tr);
      return;
    }
    for (const other of body.children) {
      if (other.dataset.key > key) {
        other.before(tr);
        return;
      }
    }
    body.append(tr);
  }

  function removeRow(k) {
    const key = `${k.namespace}/${k.name}`;
    state.rows.delete(key);
    const old = $(`#rollouts-body tr[data-key="${CSS.escape(key)}"]`);
    if (old) old.remove();
  }

  function showList(ns) {
    closeStreams();
    state.key = null;
    state.view = null;
    state.listNamespace = ns;
    state.rows = new Map();
    document.title = ns ? `Rollouts \u00B7 ${ns}` : 'Rollouts';
    fill($('#crumbs'), h('span', { class: 'here', text: ns || 'all namespaces' }));
    renderNamespaceSwitch();
    const all = state.info.allNamespaces && !ns;
    const search = h('input', {
      type: 'search', id: 'filter', placeholder: 'Filter by name', 'aria-label': 'Filter by name', value: state.filter.text,
      oninput: (e) => { state.filter.text = e.target.value; applyFilter(); },
    });
    const chips = h('div', { class: 'chips', role: 'group', 'aria-label': 'Filter by status' }, STATUSES.map((st) => h('button', {
      type: 'button', class: 'chip', id: `chip-${st}`, 'aria-pressed': state.filter.statuses.has(st) ? 'true' : 'false',
      onclick: (e) => {
        const on = !state.filter.statuses.has(st);
        if (on) state.filter.statuses.add(st); else state.filter.statuses.delete(st);
        e.currentTarget.setAttribute('aria-pressed', on ? 'true' : 'false');
        applyFilter();
      },
    }, `${st} `, h('span', { class: 'n', text: '0' }))));
    const table = h('table', { class: 'rollouts', id: 'rollouts' },
      h('caption', { class: 'sr', text: 'Rollouts' }),
      h('thead', {}, h('tr', {},
        ['Status', 'Name', all ? 'Namespace' : null, 'Strategy', 'Step', 'Weight (set / actual)', 'Images', 'Revision', 'Pods', 'Age']
          .filter(Boolean).map((c) => h('th', { scope: 'col', text: c })))),
      h('tbody', { id: 'rollouts-body' }));
    fill($('#main'),
      h('div', { class: 'toolbar' }, search, chips, h('span', { class: 'count', id: 'count', 'aria-live': 'polite' })),
      table,
      h('p', { class: 'empty', id: 'empty', hidden: true, text: ns ? `No rollouts in namespace ${ns}.` : 'No rollouts.' }));
    const query = ns ? `?namespace=${encodeURIComponent(ns)}` : '';
    stream(`api/v1/stream/rollouts${query}`, {
      snapshot: (d) => {
        state.rows = new Map();
        const body = $('#rollouts-body');
        const rows = d.rows.slice().sort((a, b) => (rowKey(a) < rowKey(b) ? -1 : 1));
        const frag = document.createDocumentFragment();
        for (const r of rows) {
          state.rows.set(rowKey(r), r);
          frag.append(renderRow(r));
        }
        fill(body, frag);
        setBanner(d.problems);
        updateCounts();
        if (state.firstListRender) {
          state.firstListRender = false;
          performance.mark('rollouts-list-rendered');
        }
      },
      delta: (d) => {
        for (const r of d.upsert) upsertRow(r);
        for (const k of d.remove) removeRow(k);
        updateCounts();
      },
      problems: (d) => setBanner(d.problems),
    });
  }

  // ---------------------------------------------------------------------------------------
  // The rollout view

  function facts(pairs) {
    return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v, id]) => [h('dt', { text: k }), h('dd', { id: id || null }, v)]));
  }

  function summary(v) {
    return h('section', { class: 'panel', 'aria-labelledby': 'summary-h' },
      h('h2', { id: 'summary-h', text: 'Summary' }),
      facts([
        ['Strategy', v.strategy || '\u2013'],
        v.step ? ['Step', `${stepText(v.step)}${v.step.done ? ' (all done)' : ''}`, 'step'] : null,
        v.setWeight !== undefined ? ['Set weight', `${v.setWeight}%`, 'set-weight'] : null,
        v.actualWeight !== undefined ? ['Actual weight', `${v.actualWeight}%`, 'actual-weight'] : null,
        ['Replicas', `${v.desired} desired, ${v.updated} updated, ${v.ready} ready, ${v.available} available`],
        ['Revision', String(v.revision || '\u2013'), 'revision'],
        ['Images', images(v.images)],
        ['Age', h('span', { class: 'age', 'data-since': v.created || '', text: ageText(v.created, Date.now()) })],
      ]));
  }

  function containersPanel(v, ro) {
    const [ns, name] = state.key;
    const rows = v.containers.map((c) => h('tr', {},
      h('td', {}, c.name, c.init ? h('span', { class: 'muted', text: ' (init)' }) : null),
      h('td', {}, h('code', { text: c.image })),
      ro ? null : h('td', {}, h('button', {
        type: 'button', class: 'btn small', 'data-action': 'set-image', 'data-container': c.name,
        onclick: () => runAction(ns, name, 'set-image', { container: c.name }, `Set the image of ${c.name}?`,
          `The new image of container ${c.name} of rollout ${name}; the change rolls out through the steps.`,
          [{ name: 'image', label: 'Image', value: c.image }]),
      }, 'Set image'))));
    return h('section', { class: 'panel', 'aria-labelledby': 'containers-h' },
      h('h2', { id: 'containers-h', text: 'Containers' }),
      rows.length ? h('table', { class: 'containers' },
        h('thead', {}, h('tr', {}, h('th', { text: 'Name' }), h('th', { text: 'Image' }), ro ? null : h('th', {}, h('span', { class: 'sr', text: 'Actions' })))),
        h('tbody', {}, rows)) : h('p', { class: 'muted', text: 'No pod template.' }));
  }

  function stepsPanel(v) {
    const title = v.strategy === 'BlueGreen' ? 'Stages' : 'Steps';
    return h('section', { class: 'panel', 'aria-labelledby': 'steps-h' },
      h('h2', { id: 'steps-h', text: title }),
      v.steps.length === 0 ? h('p', { class: 'muted', text: 'No steps: a rolling update.' })
        : h('ol', { class: 'steps', id: 'steps' }, v.steps.map((st) => h('li', {
          class: `step ${st.state}`, 'data-number': st.number, 'data-state': st.state,
          'aria-current': st.state === 'current' ? 'step' : null,
        },
        h('span', { class: 'dot', 'aria-hidden': 'true', text: st.state === 'done' ? '\u2714' : (st.state === 'aborted' ? '\u2716' : st.number) }),
        h('span', { class: 'title' }, st.title,
          st.state === 'current' ? h('span', { class: 'badge now', text: 'now' }) : null,
          st.state === 'aborted' ? h('span', { class: 'badge now', text: 'aborted here' }) : null),
        h('span', { class: 'sr', text: ` (step ${st.number}, ${st.state})` }),
        h('code', { text: st.code })))));
  }

  function podClass(status) {
    if (status === 'Running' || status === 'Completed') return 'ok';
    if (/^(Pending|ContainerCreating|Terminating|Init:)/.test(status)) return 'progress';
    if (/(Error|BackOff|Failed|ExitCode|Signal|Invalid)/.test(status)) return 'bad';
    return 'warn';
  }

  function revisionsPanel(v, ro) {
    const [ns, name] = state.key;
    const revs = v.revisions.map((rev) => h('section', { class: 'revision', 'data-revision': rev.revision, 'aria-labelledby': `rev-${rev.revision}` },
      h('header', {},
        h('h3', { id: `rev-${rev.revision}`, text: `Revision ${rev.revision}` }),
        rev.current ? h('span', { class: 'badge current', text: 'current spec' })
          : (ro ? null : h('button', {
            type: 'button', class: 'btn small', 'data-action': 'rollback', 'data-revision': rev.revision,
            onclick: () => runAction(ns, name, 'rollback', { revision: rev.revision }, `Roll back to revision ${rev.revision}?`,
              `The pod template of revision ${rev.revision} becomes rollout ${name}'s spec again, and rolls out through the steps.`),
          }, 'Rollback'))),
      rev.replicaSets.map((rs) => h('div', { class: 'rs', 'data-replicaset': rs.name },
        h('span', { class: 'rs-name', text: rs.name }),
        rs.roles.map((r) => [h('span', { class: `badge role-${r}`, text: r }), ' ']),
        h('span', { class: 'muted', text: ` ${rs.status}, ${rs.available}/${rs.replicas} available` }),
        h('div', {}, rs.images.map((i) => h('code', { text: i }))),
        rs.pods.length ? h('ul', { class: 'pods big', 'aria-label': `Pods of ${rs.name}` }, rs.pods.map((p) => h('li', {
          class: `pod ${podClass(p.status)}`, title: `${p.name}: ${p.status}, ${p.ready} ready, ${p.restarts} restarts`,
        }, h('span', { class: 'sr', text: `${p.name}: ${p.status}, ${p.ready} ready` })))) : null)),
      rev.analysisRuns.length ? h('p', { class: 'muted', text: `AnalysisRuns: ${rev.analysisRuns.join(', ')}` }) : null));
    return h('section', { class: 'panel', 'aria-labelledby': 'revisions-h' },
      h('h2', { id: 'revisions-h', text: 'Revisions' }),
      revs.length ? revs : h('p', { class: 'muted', text: 'No ReplicaSets yet.' }));
  }

  // An analysis metric's measurements against its conditions, as an SVG chart.
  function metricChart(metric, id) {
    const W = 600; const H = 210; const L = 56; const R = 14; const T = 16; const B = 30;
    const pw = W - L - R; const ph = H - T - B;
    const ms = metric.measurements;
    const times = ms.map((m) => Date.parse(m.finishedAt || m.startedAt || ''));
    const timed = times.every((t) => Number.isFinite(t)) && Math.max(...times) > Math.min(...times);
    const t0 = timed ? Math.min(...times) : 0;
    const t1 = timed ? Math.max(...times) : Math.max(1, ms.length - 1);
    const xOf = (i) => L + (ms.length < 2 && !timed ? pw / 2 : (pw * ((timed ? times[i] : i) - t0)) / (t1 - t0 || 1));
    const nums = ms.map((m) => m.number).filter((n) => typeof n === 'number');
    const ths = [...metric.successThresholds.map((t) => ({ ...t, kind: 'success' })), ...metric.failureThresholds.map((t) => ({ ...t, kind: 'failure' }))];
    const all = nums.concat(ths.map((t) => t.value));
    let lo = all.length ? Math.min(...all) : 0;
    let hi = all.length ? Math.max(...all) : 1;
    if (hi === lo) { lo -= Math.abs(lo) * 0.1 || 1; hi += Math.abs(hi) * 0.1 || 1; }
    const pad = (hi - lo) * 0.1;
    lo -= pad; hi += pad;
    const yOf = (v) => T + ph - (ph * (v - lo)) / (hi - lo);
    const fmt = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : Number(v.toPrecision(3)).toString());
    const last = ms[ms.length - 1];
    const label = `${ms.length} measurements of ${metric.name}` + (last ? `; the last: ${last.value || 'no value'} (${last.phase})` : '');
    const svg = s('svg', { class: 'chart', id, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label });
    for (const frac of [0, 0.5, 1]) {
      const v = lo + (hi - lo) * frac;
      svg.append(s('line', { class: 'grid', x1: L, x2: L + pw, y1: yOf(v), y2: yOf(v) }),
        s('text', { x: L - 6, y: yOf(v) + 4, 'text-anchor': 'end', text: fmt(v) }));
    }
    svg.append(s('line', { class: 'axis', x1: L, x2: L, y1: T, y2: T + ph }),
      s('line', { class: 'axis', x1: L, x2: L + pw, y1: T + ph, y2: T + ph }));
    for (const t of ths) {
      const y = yOf(t.value);
      svg.append(s('line', { class: `th-${t.kind} threshold`, x1: L, x2: L + pw, y1: y, y2: y },
        s('title', { text: `${t.kind} when the measurement ${t.op} ${t.value}` })),
      s('text', { class: `lbl-${t.kind}`, x: L + pw - 4, y: y - 4, 'text-anchor': 'end', text: `${t.kind}: ${t.op} ${fmt(t.value)}` }));
    }
    const points = ms.map((m, i) => [xOf(i), typeof m.number === 'number' ? yOf(m.number) : null]).filter((p) => p[1] !== null);
    if (points.length > 1) svg.append(s('polyline', { class: 'line', points: points.map((p) => p.join(',')).join(' ') }));
    ms.forEach((m, i) => {
      const numeric = typeof m.number === 'number';
      const when = m.finishedAt || m.startedAt || '';
      svg.append(s('circle', {
        class: `measurement phase-${m.phase}`, 'data-index': i, cx: xOf(i), cy: numeric ? yOf(m.number) : T + ph, r: numeric ? 4.5 : 3.5,
      }, s('title', { text: `${when}: ${m.value || 'no value'} (${m.phase})${m.message ? ` ${m.message}` : ''}` })));
    });
    if (timed) {
      svg.append(s('text', { x: L, y: H - 8, text: new Date(t0).toLocaleTimeString() }),
        s('text', { x: L + pw, y: H - 8, 'text-anchor': 'end', text: new Date(t1).toLocaleTimeString() }));
    }
    return svg;
  }

  function measurementTable(m, id) {
    return h('details', { id },
      h('summary', { text: `The ${m.measurements.length} measurements` }),
      h('table', { class: 'measurements' },
        h('thead', {}, h('tr', {}, ['Finished', 'Value', 'Phase', 'Message'].map((c) => h('th', { text: c })))),
        h('tbody', {}, m.measurements.map((x) => h('tr', {},
          h('td', { text: x.finishedAt || x.startedAt || '' }),
          h('td', {}, h('code', { text: x.value })),
          h('td', { text: x.phase }),
          h('td', { text: x.message }))))));
  }

  function metricView(run, m, i) {
    const counts = `${m.provider}${m.dryRun ? ', dry run' : ''} \u00B7 ${m.phase || 'Pending'} \u00B7 ${m.successful} successful, ${m.failed} failed, ${m.inconclusive} inconclusive, ${m.error} errors`;
    return h('div', { class: 'metric', 'data-metric': m.name },
      h('h4', {}, m.name, ' ', h('span', { class: 'muted', text: counts })),
      h('div', { class: 'conditions' },
        m.successCondition ? h('span', { class: 'cond-success' }, 'success: ', h('code', { text: m.successCondition })) : null,
        m.failureCondition ? h('span', { class: 'cond-failure' }, 'failure: ', h('code', { text: m.failureCondition })) : null),
      m.query ? h('div', { class: 'muted' }, 'query: ', h('code', { text: m.query })) : null,
      m.measurements.length ? metricChart(m, `chart-${run.name}-${i}`) : h('p', { class: 'muted', text: 'No measurement yet.' }),
      m.measurements.length ? measurementTable(m, `table-${run.name}-${i}`) : null);
  }

  function analysisPanel(v) {
    if (!v.analysisRuns.length) return null;
    const runs = v.analysisRuns.map((run) => h('article', { class: 'analysis', 'data-run': run.name },
      h('header', {},
        h('strong', { text: run.name }),
        statusBadge(run.status || 'Pending'),
        run.kind ? h('span', { class: 'badge', text: run.kind }) : null,
        h('span', { class: 'muted', text: `revision ${run.revision}` })),
      run.message ? h('p', { class: 'muted', text: run.message }) : null,
      run.metrics.map((m, i) => metricView(run, m, i))));
    return h('section', { class: 'panel', 'aria-labelledby': 'analysis-h' },
      h('h2', { id: 'analysis-h', text: 'Analysis' }), runs);
  }

  function planPanel(v) {
    if (!v.plan) return null;
    let chart = null;
    const doc = new DOMParser().parseFromString(v.plan.svg, 'image/svg+xml');
    if (doc.documentElement && doc.documentElement.nodeName === 'svg') {
      chart = document.importNode(doc.documentElement, true);
      chart.setAttribute('role', 'img');
      chart.setAttribute('aria-label', `Planned timeline from ${v.plan.fromImage} to ${v.plan.toImage}: weight and pods of each version over time`);
      chart.id = 'plan-chart';
    }
    return h('section', { class: 'panel plan', 'aria-labelledby': 'plan-h' },
      h('h2', { id: 'plan-h', text: 'Planned timeline of this update' }),
      h('p', { class: 'muted', text: `${v.plan.fromImage} \u2192 ${v.plan.toImage}: what the controller's planner does, with pods ready at once (the minimum).` }),
      chart,
      h('details', { id: 'plan-table' }, h('summary', { text: 'As a table' }), h('pre', { text: v.plan.text })));
  }

  function conditionsPanel(v) {
    if (!v.conditions.length) return null;
    return h('section', { class: 'panel', 'aria-labelledby': 'conditions-h' },
      h('details', { id: 'conditions' }, h('summary', { id: 'conditions-h', text: `Conditions (${v.conditions.length})` }),
        h('table', { class: 'measurements' },
          h('thead', {}, h('tr', {}, ['Type', 'Status', 'Reason', 'Message'].map((c) => h('th', { text: c })))),
          h('tbody', {}, v.conditions.map((c) => h('tr', {}, h('td', { text: c.type }), h('td', { text: c.status }), h('td', { text: c.reason }), h('td', { text: c.message })))))));
  }

  function whyPanel(v) {
    if (!v.waiting) return null;
    return h('section', { class: `panel why ${v.status}`, id: 'why', 'aria-label': 'Why it is waiting' },
      h('p', {}, h('span', { id: 'why-text', text: v.waiting.text }),
        v.waiting.until ? h('span', { class: 'until', id: 'why-until', 'data-until': v.waiting.until }) : null));
  }

  // The rollout view is a skeleton of slots built once per rollout; each update redraws only
  // the slots whose data changed, and the action buttons stay in place (only enabled or
  // disabled), so that nothing moves under a person's pointer.
  function skeleton(ns, name) {
    const ro = state.info.readOnly;
    const slot = (id) => h('div', { class: 'slot', id });
    const buttons = ro ? null : h('div', { class: 'actions', role: 'group', 'aria-label': 'Actions' },
      ['promote', 'promote-full', 'abort', 'retry', 'pause', 'restart'].map((a) => actionButton(ns, name, a, false, '')));
    fill($('#main'),
      h('div', { class: 'head' },
        h('div', {},
          h('h1', {}, h('span', { id: 'rollout-name', text: name }), h('span', { id: 'status' })),
          h('p', { class: 'message', id: 'message' })),
        buttons),
      slot('why-slot'),
      h('div', { class: 'grid' }, slot('summary-slot'), slot('containers-slot')),
      h('div', { class: 'two' },
        h('div', { class: 'stack' }, slot('revisions-slot'), slot('analysis-slot'), slot('plan-slot'), slot('conditions-slot')),
        slot('steps-slot')));
    state.drawn = new Map();
  }

  const WHY_NOT = {
    promote: 'nothing to promote: not paused, no update in flight',
    'promote-full': 'no update in flight',
    abort: 'nothing to abort',
    retry: 'only an aborted rollout is retried',
    pause: 'already paused, or complete',
    restart: '',
  };

  function redraw(id, data, draw) {
    const json = JSON.stringify(data);
    if (state.drawn.get(id) === json) return;
    state.drawn.set(id, json);
    const el = document.getElementById(id);
    const open = [...el.querySelectorAll('details[open]')].map((d) => d.id).filter(Boolean);
    const focused = el.contains(document.activeElement) ? document.activeElement.id : null;
    fill(el, draw());
    for (const d of open) { const x = document.getElementById(d); if (x) x.open = true; }
    if (focused) { const f = document.getElementById(focused); if (f && !f.disabled) f.focus(); }
  }

  function renderView(v) {
    const ro = state.info.readOnly;
    if (!document.getElementById('steps-slot')) skeleton(state.key[0], state.key[1]);
    fill($('#status'), statusBadge(v.status, v.message));
    const msg = $('#message');
    msg.textContent = v.message || '';
    msg.hidden = !v.message;
    if (!ro) {
      const e = v.enabled;
      const on = { promote: e.promote, 'promote-full': e.promoteFull, abort: e.abort, retry: e.retry, pause: e.pause, restart: e.restart };
      for (const [a, enabled] of Object.entries(on)) {
        const b = document.getElementById(`act-${a}`);
        b.disabled = !enabled;
        if (enabled) b.removeAttribute('title'); else b.title = WHY_NOT[a];
      }
    }
    redraw('why-slot', [v.waiting, v.status], () => whyPanel(v));
    redraw('summary-slot', [v.strategy, v.step, v.setWeight, v.actualWeight, v.desired, v.updated, v.ready, v.available, v.revision, v.images, v.created], () => summary(v));
    redraw('containers-slot', v.containers, () => containersPanel(v, ro));
    redraw('revisions-slot', v.revisions, () => revisionsPanel(v, ro));
    redraw('analysis-slot', v.analysisRuns, () => analysisPanel(v));
    redraw('plan-slot', v.plan, () => planPanel(v));
    redraw('conditions-slot', v.conditions, () => conditionsPanel(v));
    redraw('steps-slot', [v.steps, v.strategy], () => stepsPanel(v));
    tick();
  }

  function showRollout(ns, name) {
    closeStreams();
    state.key = [ns, name];
    state.view = null;
    document.title = `${name} \u00B7 Rollouts`;
    fill($('#crumbs'),
      h('a', { href: `#/ns/${encodeURIComponent(ns)}`, text: ns }), h('span', { class: 'sep', 'aria-hidden': 'true', text: '/' }),
      h('span', { class: 'here', 'aria-current': 'page', text: name }));
    renderNamespaceSwitch();
    fill($('#main'), h('p', { class: 'loading', text: `Loading rollout ${name}\u2026` }));
    stream(`api/v1/stream/rollouts/${encodeKey(ns, name)}`, {
      view: (v) => { state.view = v; renderView(v); },
      missing: (d) => {
        state.view = null;
        fill($('#main'), h('p', { class: 'empty', id: 'missing', text: `Rollout ${d.name} is not in namespace ${d.namespace}.` }));
        setBanner(d.problems);
      },
      problems: (d) => setBanner(d.problems),
    });
  }

  // ---------------------------------------------------------------------------------------
  // Clock: ages and countdowns, without asking the server.

  function tick() {
    const now = Date.now();
    for (const el of document.querySelectorAll('[data-since]')) el.textContent = ageText(el.dataset.since, now);
    const until = $('#why-until');
    if (until) {
      const left = (Date.parse(until.dataset.until) - now) / 1000;
      until.textContent = left > 0 ? `(in ${durationText(left)})` : '(any moment now)';
    }
  }

  // ---------------------------------------------------------------------------------------
  // Start

  function route() {
    const hash = location.hash || '#/';
    let m = hash.match(/^#\/rollout\/([^/]+)\/([^/?]+)/);
    if (m) return showRollout(decodeURIComponent(m[1]), decodeURIComponent(m[2]));
    m = hash.match(/^#\/ns\/([^/?]*)/);
    if (m) return showList(decodeURIComponent(m[1]));
    return showList(state.info.allNamespaces ? '' : state.info.namespace);
  }

  function readToken() {
    // `#token=T`, optionally followed by a route (`#token=T#/rollout/NS/NAME`).
    const m = location.hash.match(/^#token=([A-Za-z0-9_-]+)(#\/.*)?$/);
    if (m) {
      try { localStorage.setItem(TOKEN_KEY, m[1]); } catch (e) { /* storage refused: kept for this page */ }
      history.replaceState(null, '', `${location.pathname}${location.search}${m[2] || '#/'}`);
      return m[1];
    }
    try { return localStorage.getItem(TOKEN_KEY); } catch (e) { return null; }
  }

  function theme() {
    const stored = (() => { try { return localStorage.getItem(THEME_KEY); } catch (e) { return null; } })();
    const dark = stored ? stored === 'dark' : window.matchMedia('(prefers-color-scheme: dark)').matches;
    const apply = (d) => {
      document.documentElement.classList.toggle('dark', d);
      $('#theme').setAttribute('aria-pressed', d ? 'true' : 'false');
    };
    apply(dark);
    $('#theme').addEventListener('click', () => {
      const d = !document.documentElement.classList.contains('dark');
      apply(d);
      try { localStorage.setItem(THEME_KEY, d ? 'dark' : 'light'); } catch (e) { /* not kept */ }
    });
  }

  async function start() {
    state.token = readToken();
    theme();
    try {
      const res = await fetch('api/v1/info', { cache: 'no-store' });
      state.info = await res.json();
    } catch (e) {
      setBanner([`The dashboard cannot be reached: ${e.message}`]);
      return;
    }
    $('#version').textContent = `v${state.info.version}`;
    if (state.info.readOnly) {
      const mode = $('#mode');
      mode.textContent = 'read-only';
      mode.classList.add('ro');
    } else if (!state.token) {
      toast('No action token: actions are refused. Open the URL that kubectl-rollouts dashboard printed.', true);
    }
    window.addEventListener('hashchange', route);
    setInterval(tick, 1000);
    route();
    loadNamespaces();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
