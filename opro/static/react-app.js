// lingxi opro: the React page. React 18 UMD is served by opro itself (/ui/assets/vendor), no build step.
(function () {
  "use strict";
  var h = React.createElement, useState = React.useState, useEffect = React.useEffect;
  var TEXT = {
    zh: { title: "灵犀 · 提示词优化 (React)", send: "发送", select: "选用", reject: "拒绝", regenerate: "重新生成",
      working: "模型正在生成…", sessions: "会话", detail: "会话详情", original: "原始问题", selected: "已选提示词",
      rejected: "已拒绝", ask: "输入你的问题", newSession: "新会话", lang: "English", model: "模型", reason: "拒绝理由(可选)" },
    en: { title: "lingxi · prompt optimizer (React)", send: "Send", select: "Select", reject: "Reject", regenerate: "Regenerate",
      working: "The model is working…", sessions: "Sessions", detail: "Session detail", original: "Original question",
      selected: "Selected prompt", rejected: "Rejected", ask: "Ask a question", newSession: "New session", lang: "中文",
      model: "Model", reason: "reason (optional)" }
  };
  async function api(path, body) {
    var init = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
    var response = await fetch(path, init), envelope = null;
    try { envelope = await response.json(); } catch (e) { throw new Error("HTTP " + response.status); }
    if (!envelope || envelope.code !== 0) throw new Error((envelope && envelope.msg) || "HTTP " + response.status);
    return envelope.data;
  }
  function App() {
    var s = {};
    [["lang", /^zh/i.test(navigator.language) ? "zh" : "en"], ["sessions", []], ["models", []], ["sid", null], ["detail", null],
     ["candidates", []], ["busy", false], ["error", ""], ["input", ""], ["reason", ""]].forEach(function (pair) {
      var st = useState(pair[1]); s[pair[0]] = st[0]; s["set" + pair[0]] = st[1];
    });
    var t = TEXT[s.lang];
    async function loadSessions() { s.setsessions((await api("/sessions")).sessions); }
    async function open(sid) { var d = await api("/session/" + encodeURIComponent(sid)); s.setsid(sid); s.setdetail(d); s.setcandidates(d.candidates); await loadSessions(); }
    function run(task) {
      return function () {
        if (s.busy) return; s.setbusy(true); s.seterror("");
        task().catch(function (e) { s.seterror(e.message); }).finally(function () { s.setbusy(false); });
      };
    }
    useEffect(function () {
      api("/models").then(function (d) { s.setmodels(d.models); }).catch(function (e) { s.seterror(e.message); });
      loadSessions().catch(function (e) { s.seterror(e.message); });
    }, []);
    var send = run(async function () {
      var text = s.input.trim(); if (!text) return;
      if (!s.sid) { var r = await api("/query", { query: text }); await open(r.session_id); }
      else { await api("/message", { session_id: s.sid, message: text }); await open(s.sid); }
      s.setinput("");
    });
    function round(path, body) { return run(async function () { var r = await api(path, body); await open(r.session_id); s.setcandidates(r.candidates); }); }
    var d = s.detail;
    return h(React.Fragment, null,
      h("header", null, h("h1", null, t.title),
        h("label", null, t.model + " ", h("select", { value: (d && d.model_name) || "", disabled: s.busy || !s.sid,
          onChange: function (e) { var m = e.target.value; run(async function () { await api("/set_model", { session_id: s.sid, model_name: m }); await open(s.sid); })(); } },
          h("option", { value: "" }, "—"), s.models.map(function (m) { return h("option", { key: m, value: m }, m); }))),
        h("button", { onClick: function () { s.setlang(s.lang === "zh" ? "en" : "zh"); } }, t.lang)),
      h("main", null,
        h("section", { className: "col", id: "sessions-col" },
          h("button", { className: "primary", onClick: function () { s.setsid(null); s.setdetail(null); s.setcandidates([]); } }, t.newSession),
          h("h2", null, t.sessions),
          s.sessions.map(function (x) {
            return h("div", { key: x.session_id, className: "session-item" + (x.session_id === s.sid ? " active" : ""), onClick: run(function () { return open(x.session_id); }) },
              h("div", null, x.original_query.slice(0, 60)), h("small", null, "round " + x.round));
          })),
        h("section", { className: "col", id: "chat-col" },
          s.error ? h("div", { id: "error", role: "alert", style: { display: "block" } }, s.error) : null,
          h("div", { id: "conversation" }, d ? [h("div", { key: "q", className: "msg user" }, d.original_query)].concat(
            d.history.map(function (m, i) { return h("div", { key: i, className: "msg " + m.role }, m.content); })) : null),
          s.sid ? h("div", { id: "candidates" },
            s.candidates.map(function (c) {
              return h("div", { key: c, className: "candidate" }, h("div", { className: "text" }, c),
                h("div", { className: "actions" },
                  h("button", { className: "primary select-btn", disabled: s.busy,
                    onClick: run(async function () { await api("/select", { session_id: s.sid, choice: c }); await open(s.sid); s.setcandidates([]); }) }, t.select),
                  h("button", { className: "danger reject-btn", disabled: s.busy,
                    onClick: round("/reject", { session_id: s.sid, candidate: c, reason: s.reason }) }, t.reject)));
            }),
            h("div", { className: "actions" },
              h("input", { placeholder: t.reason, value: s.reason, onChange: function (e) { s.setreason(e.target.value); } }),
              h("button", { disabled: s.busy, onClick: round("/query_from_message", { session_id: s.sid }) }, t.regenerate))) : null,
          h("div", { id: "status", className: s.busy ? "busy" : "" }, s.busy ? t.working : ""),
          h("form", { id: "composer", onSubmit: function (e) { e.preventDefault(); send(); } },
            h("textarea", { id: "question", placeholder: t.ask, value: s.input, onChange: function (e) { s.setinput(e.target.value); } }),
            h("button", { className: "primary", type: "submit", disabled: s.busy }, t.send))),
        h("section", { className: "col", id: "detail-col" }, h("h2", null, t.detail),
          d ? h("dl", null, h("dt", null, t.original), h("dd", null, d.original_query),
            h("dt", null, t.selected), h("dd", null, d.selected_prompt || "—"),
            h("dt", null, "round"), h("dd", null, String(d.round)),
            h("dt", null, t.rejected), h("dd", null, d.rejected.join("\n") || "—")) : null)));
  }
  ReactDOM.createRoot(document.getElementById("root")).render(h(App));
})();
