// lingxi opro: the "Optimize" view — OPRO runs over labelled examples (POST/GET/DELETE /optimize).
// Upload examples, start a run, watch the score per step grow, compare the starting and the best
// instruction on the test examples. Plain JavaScript, no external asset: /ui/offline inlines it.
(function () {
  "use strict";
  var ui = window.oproUI, el = ui.el, t = ui.t;
  Object.assign(ui.TEXT.zh, {
    tabChat: "对话优化", tabOptimize: "自动优化 (OPRO)", newRun: "新的优化任务", examplesFile: "带标注的样例 (JSONL / CSV: input, target)",
    scorer: "评分方式", position: "指令位置", beforeQuestion: "问题之前", afterQuestion: "问题之后", beforeAnswer: "答案开头",
    initialInstruction: "初始指令", steps: "步数", perStep: "每步候选", trainFraction: "训练集比例", answerTokens: "答案长度上限",
    optimizerModel: "优化模型", scorerModel: "评分模型", start: "开始优化", runs: "任务", noRuns: "还没有优化任务",
    pickRun: "上传样例并开始优化,或选择左侧的任务", cancel: "取消", resume: "继续运行", step: "第 {n}/{of} 步", calls: "LLM 调用 {n} 次",
    plot: "每步得分(训练集)", bestLine: "最佳", compare: "初始指令 vs 最佳指令(测试集)", initial: "初始指令", best: "最佳指令",
    trainScore: "训练集", testScore: "测试集", input: "输入", target: "标准答案", trajectory: "优化轨迹", duplicate: "重复,未重新评分",
    emptyInstruction: "(空指令)", needFile: "请先选择样例文件", queued: "排队中", running: "运行中", completed: "已完成",
    failed: "失败", cancelled: "已取消", optimizing: "优化中", testing: "测试集评估中", done: "完成", resumed: "重启后已恢复 {n} 次"
  });
  Object.assign(ui.TEXT.en, {
    tabChat: "Chat", tabOptimize: "Optimize (OPRO)", newRun: "New run", examplesFile: "Labelled examples (JSONL / CSV: input, target)",
    scorer: "Scorer", position: "Instruction position", beforeQuestion: "before the question", afterQuestion: "after the question",
    beforeAnswer: "start of the answer", initialInstruction: "Initial instruction", steps: "Steps", perStep: "Candidates per step",
    trainFraction: "Train fraction", answerTokens: "Answer token budget", optimizerModel: "Optimizer model", scorerModel: "Scorer model",
    start: "Start", runs: "Runs", noRuns: "No runs yet", pickRun: "Upload examples and start a run, or pick one on the left",
    cancel: "Cancel", resume: "Resume", step: "step {n}/{of}", calls: "{n} LLM calls", plot: "Score per step (train)", bestLine: "best",
    compare: "Initial vs best instruction (test examples)", initial: "Initial instruction", best: "Best instruction",
    trainScore: "train", testScore: "test", input: "Input", target: "Target", trajectory: "Trajectory",
    duplicate: "duplicate, not rescored", emptyInstruction: "(empty instruction)", needFile: "Choose an examples file first",
    queued: "queued", running: "running", completed: "completed", failed: "failed", cancelled: "cancelled",
    optimizing: "optimizing", testing: "scoring the test set", done: "done", resumed: "resumed {n}× after a restart"
  });
  var $ = function (id) { return document.getElementById(id); };
  var state = { jobs: [], job: null, timer: null };
  var SVG = "http://www.w3.org/2000/svg";

  function showError(message) { var box = $("opt-error"); box.textContent = message; box.style.display = message ? "block" : "none"; }
  function percent(score) { return score === null || score === undefined ? "–" : Math.round(score * 100) + "%"; }
  function unfinished(job) { return job && (job.status === "queued" || job.status === "running"); }
  function instructionText(text) { return text || t("emptyInstruction"); }

  // --- views ---------------------------------------------------------------------------------
  function showView(name) {
    $("chat-view").hidden = name !== "chat";
    $("optimize-view").hidden = name !== "optimize";
    $("tab-chat").classList.toggle("active", name === "chat");
    $("tab-optimize").classList.toggle("active", name === "optimize");
    if (name === "optimize") loadJobs();
  }
  $("tab-chat").addEventListener("click", function () { history.replaceState(null, "", "#chat"); showView("chat"); });
  $("tab-optimize").addEventListener("click", function () { history.replaceState(null, "", "#optimize"); showView("optimize"); });

  // --- the form ------------------------------------------------------------------------------
  function renderModelChoices(models) {
    Array.prototype.forEach.call(document.querySelectorAll(".model-choice"), function (picker) {
      var chosen = picker.value;
      picker.innerHTML = "";
      picker.appendChild(el("option", { value: "", text: "(" + t("defaultModel") + ")" }));
      models.forEach(function (m) { picker.appendChild(el("option", { value: m, text: m })); });
      picker.value = models.indexOf(chosen) >= 0 ? chosen : "";
    });
  }
  $("opt-form").addEventListener("submit", async function (e) {
    e.preventDefault();
    showError("");
    var file = $("opt-file").files[0];
    if (!file) { showError(t("needFile")); return; }
    var form = new FormData();
    form.append("file", file);
    form.append("name", file.name);
    [["scorer", "opt-scorer"], ["instruction_position", "opt-position"], ["initial_instruction", "opt-initial"],
     ["steps", "opt-steps"], ["candidates_per_step", "opt-candidates"], ["train_fraction", "opt-train"],
     ["scorer_max_tokens", "opt-max-tokens"], ["optimizer_model", "opt-optimizer-model"], ["scorer_model", "opt-scorer-model"]
    ].forEach(function (pair) { var value = $(pair[1]).value; if (value !== "") form.append(pair[0], value); });
    $("opt-start").disabled = true;
    try { show(await ui.api("/optimize", form)); await loadJobs(); }
    catch (err) { showError(err.message); }
    finally { $("opt-start").disabled = false; }
  });

  // --- jobs ----------------------------------------------------------------------------------
  async function loadJobs() {
    try { state.jobs = (await ui.api("/optimize")).jobs; } catch (err) { showError(err.message); return; }
    renderJobs();
  }
  function renderJobs() {
    var list = $("job-list"); list.innerHTML = "";
    if (!state.jobs.length) list.appendChild(el("div", { "class": "empty", text: t("noRuns") }));
    state.jobs.forEach(function (job) {
      var best = job.best ? " · " + t("best") + " " + percent(job.best.train_score) : "";
      list.appendChild(el("div", { "class": "job-item" + (state.job && state.job.job_id === job.job_id ? " active" : ""),
        "data-job": job.job_id, onclick: function () { open(job.job_id); } },
        [el("div", { text: job.name || job.job_id.slice(0, 8) }),
         el("small", { text: t(job.status) + " · " + t("step", { n: job.progress.step, of: job.progress.steps }) + best })]));
    });
  }
  async function open(jobId) {
    showError("");
    try { show(await ui.api("/optimize/" + encodeURIComponent(jobId))); } catch (err) { showError(err.message); }
  }
  function show(job) {
    state.job = job;
    clearTimeout(state.timer);
    if (unfinished(job)) state.timer = setTimeout(poll, 1000);
    renderJob(); renderJobs();
  }
  async function poll() {
    if (!state.job) return;
    var id = state.job.job_id, job;
    try { job = await ui.api("/optimize/" + encodeURIComponent(id)); } catch (err) { showError(err.message); return; }
    if (!state.job || state.job.job_id !== id) return;  // another run was opened meanwhile
    var ended = !unfinished(job);
    show(job);
    if (ended) loadJobs();
  }
  async function cancel() {
    try { show(await ui.api("/optimize/" + encodeURIComponent(state.job.job_id), undefined, "DELETE")); await loadJobs(); }
    catch (err) { showError(err.message); }
  }
  async function resume() {  // a cancelled or failed run goes on where it stopped
    try { show(await ui.api("/optimize/" + encodeURIComponent(state.job.job_id) + "/resume", {})); await loadJobs(); }
    catch (err) { showError(err.message); }
  }

  // --- the selected run ----------------------------------------------------------------------
  function renderJob() {
    var box = $("job-view"); box.innerHTML = "";
    var job = state.job;
    if (!job) { box.appendChild(el("div", { "class": "empty", text: t("pickRun") })); return; }
    var status = t(job.status) + " · " + t(job.progress.phase) + " · " + t("step", { n: job.progress.step, of: job.progress.steps })
      + " · " + t("calls", { n: job.progress.calls.optimizer + job.progress.calls.scorer + job.progress.calls.judge })
      + (job.resumed ? " · " + t("resumed", { n: job.resumed }) : "");
    box.appendChild(el("div", { "class": "job-head" }, [
      el("strong", { text: job.name || job.job_id }),
      el("span", { id: "job-status", "class": "job-status " + job.status, text: status }),
      unfinished(job) ? el("button", { id: "job-cancel", type: "button", "class": "danger", text: t("cancel"), onclick: cancel }) : null,
      job.status === "cancelled" || job.status === "failed"
        ? el("button", { id: "job-resume", type: "button", "class": "primary", text: t("resume"), onclick: resume }) : null]));
    if (job.error) box.appendChild(el("div", { "class": "job-error", text: job.error }));
    box.appendChild(el("h2", { text: t("plot") }));
    box.appendChild(plot(job));
    if (job.initial && job.best) box.appendChild(comparison(job));
    box.appendChild(trajectory(job));
  }

  // Every scored instruction is a dot at its step; the line is the best score so far.
  function plot(job) {
    var width = 640, height = 220, left = 40, right = 12, top = 10, bottom = 28;
    var steps = Math.max(job.task.steps, 1);
    var x = function (step) { return left + (width - left - right) * step / steps; };
    var y = function (score) { return top + (height - top - bottom) * (1 - score); };
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("id", "score-plot");
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    function add(tag, attrs, text) {
      var node = document.createElementNS(SVG, tag);
      Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
      if (text !== undefined) node.textContent = text;
      svg.appendChild(node);
      return node;
    }
    [0, 0.25, 0.5, 0.75, 1].forEach(function (score) {
      add("line", { x1: left, x2: width - right, y1: y(score), y2: y(score), "class": "plot-grid" });
      add("text", { x: left - 6, y: y(score) + 4, "text-anchor": "end", "class": "plot-label" }, Math.round(score * 100) + "%");
    });
    for (var step = 0; step <= steps; step += Math.max(1, Math.ceil(steps / 10))) {
      add("text", { x: x(step), y: height - 8, "text-anchor": "middle", "class": "plot-label" }, String(step));
    }
    var best = job.trajectory.map(function (entry) { return x(entry.step) + "," + y(entry.best_score); }).join(" ");
    if (job.trajectory.length) add("polyline", { points: best, "class": "plot-best" });
    job.trajectory.forEach(function (entry) {
      entry.instructions.forEach(function (item, i) {
        var dot = add("circle", { cx: x(entry.step) + (i % 5 - 2) * 2, cy: y(item.score), r: 4,
          "class": "plot-point" + (item.duplicate ? " duplicate" : "") });
        var title = document.createElementNS(SVG, "title");
        title.textContent = percent(item.score) + " — " + instructionText(item.instruction);
        dot.appendChild(title);
      });
    });
    return svg;
  }

  function comparison(job) {
    function card(id, label, side) {
      return el("div", { id: id, "class": "compare-card" }, [
        el("h3", { text: label }),
        el("div", { "class": "instruction", text: instructionText(side.instruction) }),
        el("div", { "class": "scores", text: t("trainScore") + " " + percent(side.train_score) + " · " + t("testScore") + " " + percent(side.test_score) })]);
    }
    function answer(output, correct) { return el("td", { "class": correct ? "right" : "wrong", text: (correct ? "✓ " : "✗ ") + output }); }
    var rows = job.comparison.map(function (row) {
      return el("tr", {}, [el("td", { text: row.input }), el("td", { text: row.target }),
        answer(row.initial_output, row.initial_correct), answer(row.best_output, row.best_correct)]);
    });
    var table = el("table", { id: "compare-table" }, [
      el("thead", {}, [el("tr", {}, [t("input"), t("target"), t("initial"), t("best")].map(function (h) { return el("th", { text: h }); }))]),
      el("tbody", {}, rows)]);
    return el("div", { id: "job-compare" }, [el("h2", { text: t("compare") }),
      el("div", { "class": "compare-cards" }, [card("compare-initial", t("initial"), job.initial), card("compare-best", t("best"), job.best)]),
      rows.length ? table : null]);
  }

  function trajectory(job) {
    var box = el("div", { id: "job-trajectory" }, [el("h2", { text: t("trajectory") })]);
    job.trajectory.slice().reverse().forEach(function (entry) {
      box.appendChild(el("div", { "class": "round" }, [
        el("strong", { text: t("step", { n: entry.step, of: job.task.steps }) + " · " + t("best") + " " + percent(entry.best_score) }),
        el("ol", {}, entry.instructions.map(function (item) {
          return el("li", { text: percent(item.score) + " — " + instructionText(item.instruction) + (item.duplicate ? " (" + t("duplicate") + ")" : "") });
        }))]));
    });
    return box;
  }

  ui.onModels.push(renderModelChoices);
  ui.onLanguage.push(function () { renderModelChoices(ui.models()); renderJobs(); renderJob(); });
  ui.applyLanguage();
  showView(location.hash === "#optimize" ? "optimize" : "chat");
})();
