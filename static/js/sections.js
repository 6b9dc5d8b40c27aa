// Sections of the track page: press a band to add the section to your arrangement (or, while a
// render of the song as written is playing, to play from there); loop one section for practice;
// build, reorder, repeat and remove arrangement items with buttons (all keyboard-usable), see the
// new length, render it, save it under a name and use it again.
(function () {
  "use strict";

  const MAX_ITEMS = 64;
  const MAX_REPEATS = 8;

  function clock(seconds) {
    const whole = Math.max(0, Math.round(seconds));
    return Math.floor(whole / 60) + ":" + String(whole % 60).padStart(2, "0");
  }

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (error) {
      return "";
    }
  }

  async function api(method, url, body) {
    const response = await fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
    return { ok: response.ok, status: response.status, data: data };
  }

  function reason(data) {
    if (!data) return "Something went wrong; try again.";
    if (typeof data.detail === "string") return data.detail;
    return Object.values(data).flat().join(" ");
  }

  function setup(card) {
    const data = JSON.parse(document.getElementById("sections-data").textContent);
    const sections = data.sections;
    const items = []; // {section: index, repeats: n}
    const list = card.querySelector("[data-arrangement-items]");
    const lengthLabel = card.querySelector("[data-arrangement-length]");
    const empty = card.querySelector("[data-arrangement-empty]");
    const errorBox = card.querySelector("[data-arrangement-error]");
    const renderButton = card.querySelector("[data-arrangement-render]");
    const saveButton = card.querySelector("[data-arrangement-save]");
    const nameInput = card.querySelector("[data-arrangement-name]");
    const savedList = card.querySelector("[data-saved-arrangements]");
    let loop = null; // {start, end} in render seconds
    let renderInfo = null; // the current render's settings, from the API

    function itemText(item) {
      // A name used by several sections means the first of them: later ones go by their bars.
      const s = sections[item.section];
      const first = sections.findIndex(function (other) {
        return String(other.name).toLowerCase() === String(s.name).toLowerCase();
      });
      const body = first === item.section ? s.name : s.start_bar + "-" + s.end_bar;
      return item.repeats > 1 ? body + " x" + item.repeats : body;
    }

    function itemLabel(item) {
      const name = sections[item.section].name;
      return item.repeats > 1 ? name + " \u00d7" + item.repeats : name;
    }

    function showError(text) {
      if (!errorBox) return;
      errorBox.textContent = text || "";
      errorBox.hidden = !text;
    }

    function draw(focusIndex, focusAction) {
      if (!list) return;
      list.textContent = "";
      items.forEach(function (item, index) {
        const li = document.createElement("li");
        const label = document.createElement("span");
        label.textContent = itemLabel(item) + " ";
        li.appendChild(label);
        [
          ["more", "+", "Repeat " + sections[item.section].name + " once more", item.repeats >= MAX_REPEATS],
          ["less", "\u2212", "Repeat " + sections[item.section].name + " once less", item.repeats <= 1],
          ["up", "\u2191", "Move " + sections[item.section].name + " earlier", index === 0],
          ["down", "\u2193", "Move " + sections[item.section].name + " later", index === items.length - 1],
          ["remove", "\u00d7", "Remove " + sections[item.section].name, false],
        ].forEach(function (spec) {
          const button = document.createElement("button");
          button.type = "button";
          button.className = "link-button small";
          button.dataset.action = spec[0];
          button.dataset.index = String(index);
          button.textContent = spec[1];
          button.setAttribute("aria-label", spec[2]);
          button.disabled = spec[3];
          li.appendChild(button);
        });
        list.appendChild(li);
      });
      let seconds = 0;
      items.forEach(function (item) {
        const s = sections[item.section];
        seconds += (s.end_s - s.start_s) * item.repeats;
      });
      if (empty) empty.hidden = items.length > 0;
      if (lengthLabel) {
        lengthLabel.textContent = items.length
          ? "New length: " + clock(seconds) + " at the original tempo (" + items.length + " item" + (items.length === 1 ? "" : "s") + ")."
          : "";
      }
      if (renderButton) renderButton.disabled = items.length === 0;
      if (saveButton) saveButton.disabled = items.length === 0;
      if (focusIndex !== undefined && list.children[focusIndex]) {
        const target =
          list.children[focusIndex].querySelector('[data-action="' + focusAction + '"]:not([disabled])') ||
          list.children[focusIndex].querySelector("button:not([disabled])");
        if (target) target.focus();
      } else if (focusIndex !== undefined && renderButton) {
        renderButton.focus();
      }
    }

    function add(sectionIndex) {
      showError("");
      const last = items[items.length - 1];
      if (last && last.section === sectionIndex && last.repeats < MAX_REPEATS) {
        last.repeats += 1;
      } else if (items.length < MAX_ITEMS) {
        items.push({ section: sectionIndex, repeats: 1 });
      } else {
        showError("An arrangement has at most " + MAX_ITEMS + " items.");
      }
      draw();
    }

    // The current render (when the page plays one): where a section starts in it.
    const player = document.querySelector("[data-player]");
    const audio = player ? player.querySelector("audio") : null;
    if (player && player.dataset.renderId) {
      api("GET", "/api/renders/" + player.dataset.renderId + "/").then(function (result) {
        if (result.ok) renderInfo = result.data;
      });
    }

    function renderSeconds(s) {
      // Only for a render of the song as written: arranged renders play sections elsewhere.
      if (!renderInfo || (renderInfo.arrangement && renderInfo.arrangement.length)) return null;
      const tempo = renderInfo.tempo || 1;
      const first = sections[0];
      const barSeconds = (first.end_s - first.start_s) / (first.end_bar - first.start_bar + 1);
      const countIn = ((renderInfo.count_in || 0) * barSeconds) / tempo;
      return { start: countIn + s.start_s / tempo, end: countIn + s.end_s / tempo };
    }

    card.querySelectorAll("[data-section]").forEach(function (band) {
      band.addEventListener("click", function () {
        const s = sections[Number(band.dataset.section)];
        const place = renderSeconds(s);
        if (audio && !audio.paused && place) {
          audio.currentTime = place.start; // listening: play from this section
          return;
        }
        add(Number(band.dataset.section));
      });
    });

    card.querySelectorAll("[data-loop]").forEach(function (button) {
      button.addEventListener("click", function () {
        const place = renderSeconds(sections[Number(button.dataset.loop)]);
        const on = button.getAttribute("aria-pressed") !== "true";
        card.querySelectorAll("[data-loop]").forEach(function (other) {
          other.setAttribute("aria-pressed", "false");
        });
        if (!on || !audio) {
          loop = null;
          return;
        }
        if (!place) {
          showError("Loops play in a render of the song as written; render it first.");
          return;
        }
        button.setAttribute("aria-pressed", "true");
        loop = place;
        audio.currentTime = place.start;
        audio.play();
      });
    });
    if (audio) {
      audio.addEventListener("timeupdate", function () {
        if (loop && audio.currentTime >= loop.end - 0.05) audio.currentTime = loop.start;
      });
    }

    if (list) {
      list.addEventListener("click", function (event) {
        const button = event.target.closest("button[data-action]");
        if (!button) return;
        const index = Number(button.dataset.index);
        const action = button.dataset.action;
        const item = items[index];
        let focus = index;
        if (action === "more") item.repeats = Math.min(MAX_REPEATS, item.repeats + 1);
        if (action === "less") item.repeats = Math.max(1, item.repeats - 1);
        if (action === "up" && index > 0) {
          items.splice(index - 1, 0, items.splice(index, 1)[0]);
          focus = index - 1;
        }
        if (action === "down" && index < items.length - 1) {
          items.splice(index + 1, 0, items.splice(index, 1)[0]);
          focus = index + 1;
        }
        if (action === "remove") {
          items.splice(index, 1);
          focus = Math.min(index, items.length - 1);
        }
        draw(focus < 0 ? undefined : focus, action);
      });
    }

    if (renderButton) {
      renderButton.addEventListener("click", async function () {
        showError("");
        renderButton.disabled = true;
        const body = { revision: data.revision, arrangement: items.map(itemText) };
        const result = await api("POST", "/api/renders/", body);
        renderButton.disabled = false;
        if (!result.ok) {
          showError(reason(result.data));
          return;
        }
        const url = new URL(window.location.href);
        url.searchParams.set("render", String(result.data.id));
        url.hash = "listen";
        window.location.assign(url.toString());
      });
    }

    function loadItems(texts) {
      items.length = 0;
      texts.forEach(function (text) {
        const match = /^(.*?)(?:\s*x\s*(\d+))?$/i.exec(text);
        const name = (match ? match[1] : text).trim().toLowerCase();
        const range = /^(\d+)\s*-\s*(\d+)$/.exec(name);
        const index = sections.findIndex(function (s) {
          if (range) return s.start_bar === Number(range[1]) && s.end_bar === Number(range[2]);
          return String(s.name).toLowerCase() === name;
        });
        if (index >= 0) items.push({ section: index, repeats: match && match[2] ? Number(match[2]) : 1 });
      });
      draw();
    }

    async function refreshSaved() {
      if (!savedList) return;
      const result = await api("GET", "/api/tracks/" + data.track + "/arrangements/");
      savedList.textContent = "";
      if (!result.ok) return;
      result.data.forEach(function (row) {
        const li = document.createElement("li");
        const label = document.createElement("span");
        label.textContent = row.name + ": " + row.items.join(", ");
        const use = document.createElement("button");
        use.type = "button";
        use.className = "link-button small";
        use.textContent = "Use";
        use.setAttribute("aria-label", "Use " + row.name);
        use.addEventListener("click", function () {
          if (nameInput) nameInput.value = row.name;
          loadItems(row.items);
        });
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "link-button small";
        remove.textContent = "Delete";
        remove.setAttribute("aria-label", "Delete " + row.name);
        remove.addEventListener("click", async function () {
          await api("DELETE", "/api/arrangements/" + row.id + "/");
          refreshSaved();
        });
        li.append(label, " ", use, " ", remove);
        savedList.appendChild(li);
      });
    }

    if (saveButton) {
      saveButton.addEventListener("click", async function () {
        showError("");
        const result = await api("POST", "/api/tracks/" + data.track + "/arrangements/", {
          name: nameInput ? nameInput.value : "",
          items: items.map(itemText),
        });
        if (!result.ok) {
          showError(reason(result.data));
          return;
        }
        refreshSaved();
      });
    }

    draw();
    refreshSaved();
  }

  document.addEventListener("DOMContentLoaded", function () {
    const card = document.querySelector("[data-sections]");
    if (card) setup(card);
  });
})();
