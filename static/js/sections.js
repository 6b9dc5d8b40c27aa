// Sections of the track page. Under the waveform, a strip of coloured bands shows where each section
// plays in the render heard (its edges at the song time of the waveform above; press one to play from
// there); the sections card's bands add a section to your arrangement; a Loop button loops one section
// in the player for practice. Build, reorder, repeat and remove arrangement items with buttons (all
// keyboard-usable), see the new length, render it (while something plays, it is heard at once through
// instant listening, listen.js), save it under a name and use it again.
//
// Everything acts on Backtrack.currentPlayer() at the moment it runs: instant listening replaces the
// player's <audio> (and htmx the whole player), so no element is kept.
(function () {
  "use strict";

  const MAX_ITEMS = 64;
  const MAX_REPEATS = 8;
  // A loop jumps back this close to its end (timeupdate comes every 250 ms at most, the timer faster).
  const LOOP_EARLY_S = 0.05;
  const LOOP_TICK_MS = 40;
  // A jump back that is on its way (a new stream opening) is not asked again for this long.
  const LOOP_JUMP_WAIT_MS = 4000;
  // Further than this past a loop's end, the listener went elsewhere on purpose: the loop ends.
  const LOOP_LEFT_S = 2;

  function player() {
    return window.Backtrack && window.Backtrack.currentPlayer ? window.Backtrack.currentPlayer() : null;
  }

  // "Chorus 2" -> "C2", "Pre-chorus" -> "PC": the label of a band too narrow for the whole name.
  function shortName(name) {
    return String(name)
      .split(/[\s\-_/]+/)
      .filter(Boolean)
      .map(function (word) {
        return /^\d+$/.test(word) ? word : word.charAt(0).toUpperCase();
      })
      .join("");
  }

  // The whole name when it fits, else its initials, else nothing (the title and name keep it whole).
  function fitLabel(band, name) {
    band.textContent = name;
    if (band.scrollWidth <= band.clientWidth + 1) return;
    band.textContent = shortName(name);
    if (band.scrollWidth <= band.clientWidth + 1) return;
    band.textContent = "";
  }

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
    const statusBox = card.querySelector("[data-arrangement-status]");
    const renderButton = card.querySelector("[data-arrangement-render]");
    const saveButton = card.querySelector("[data-arrangement-save]");
    const nameInput = card.querySelector("[data-arrangement-name]");
    const savedList = card.querySelector("[data-saved-arrangements]");

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

    function showStatus(text) {
      if (statusBox) statusBox.textContent = text || "";
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

    // --- where sections play in the render heard ---------------------------------------------------

    const names = [];
    sections.forEach(function (s) {
      if (names.indexOf(String(s.name)) < 0) names.push(String(s.name));
    });

    function hue(sectionIndex) {
      // As the card's bands (templatetags/sections.py): sections of one name share a colour.
      return (names.indexOf(String(sections[sectionIndex].name)) * 137) % 360;
    }

    function sectionOfBar(bar) {
      for (let i = 0; i < sections.length; i++) {
        if (bar <= sections[i].end_bar) return i;
      }
      return sections.length - 1;
    }

    // Seconds of the song as written where `bar` starts (the bar after the last: where the song ends).
    // Bars are spread evenly over their section: exact at section edges, close enough inside one.
    function barStart(bar) {
      const last = sections[sections.length - 1];
      if (bar > last.end_bar) return last.end_s;
      const s = sections[sectionOfBar(bar)];
      const barSeconds = (s.end_s - s.start_s) / (s.end_bar - s.start_bar + 1);
      return s.start_s + (bar - s.start_bar) * barSeconds;
    }

    // An arrangement item as the API takes it ("Chorus x2", "17-24"): bars, repeats and the section
    // it is (-1 for a bar range that is no section), as the engine resolves it; null when unknown.
    function parseItem(text) {
      const match = /^(.*?)(?:\s*x\s*(\d+))?$/i.exec(String(text));
      const body = (match ? match[1] : String(text)).trim();
      const repeats = match && match[2] ? Number(match[2]) : 1;
      const range = /^(\d+)\s*-\s*(\d+)$/.exec(body);
      if (range) {
        const first = Number(range[1]);
        const last = Number(range[2]);
        const section = sections.findIndex(function (s) {
          return s.start_bar === first && s.end_bar === last;
        });
        const label = section >= 0 ? null : first + "\u2013" + last;
        return { first: first, last: last, repeats: repeats, section: section, label: label };
      }
      const section = sections.findIndex(function (s) {
        return String(s.name).toLowerCase() === body.toLowerCase();
      });
      if (section < 0) return null;
      const s = sections[section];
      return { first: s.start_bar, last: s.end_bar, repeats: repeats, section: section, label: null };
    }

    // The render heard, as GET /api/renders/{id}/ gives it, and where each piece of it plays:
    // [{section, name, first, last, start, end}] in seconds of that render (count-in and tempo included).
    let heard = null;
    let timeline = [];
    let asked = 0;

    function buildTimeline(info) {
      const tempo = Number(info.tempo) || 1;
      let pieces;
      if (info.arrangement && info.arrangement.length) {
        pieces = info.arrangement.map(parseItem).filter(Boolean);
      } else {
        pieces = sections.map(function (s, index) {
          return { first: s.start_bar, last: s.end_bar, repeats: 1, section: index, label: null };
        });
      }
      if (!pieces.length) return [];
      // The count-in plays bars of the first piece's first bar (tracks/engine/arrange.py).
      const firstBar = pieces[0].first;
      let at = ((Number(info.count_in) || 0) * (barStart(firstBar + 1) - barStart(firstBar))) / tempo;
      const result = [];
      pieces.forEach(function (piece) {
        const length = (barStart(piece.last + 1) - barStart(piece.first)) / tempo;
        const colour = piece.section >= 0 ? piece.section : sectionOfBar(piece.first);
        for (let r = 0; r < piece.repeats; r++) {
          result.push({
            section: piece.section,
            colour: colour,
            name: piece.label || String(sections[piece.section].name),
            first: piece.first,
            last: piece.last,
            start: at,
            end: at + length,
          });
          at += length;
        }
      });
      return result;
    }

    // Where `sectionIndex` first plays in the render heard (null: it does not, or nothing is heard).
    function placeOf(sectionIndex) {
      return (
        timeline.find(function (piece) {
          return piece.section === sectionIndex;
        }) || null
      );
    }

    // --- the strip under the waveform --------------------------------------------------------------

    let strip = null;
    let caption = null; // names the section playing (or the band pointed at): narrow bands show no name
    let laidOutFor = null; // the duration the strip was laid out with
    let pointed = null; // the band under the pointer or focus

    function pieceText(piece) {
      return piece.name + " \u00b7 bars " + piece.first + "\u2013" + piece.last;
    }

    function ensureStrip(p) {
      if (strip && strip.isConnected && strip.previousElementSibling === p.wave) return strip;
      if (strip) strip.remove();
      if (caption) caption.remove();
      strip = document.createElement("div");
      strip.className = "section-strip";
      // One tab stop for the strip; arrow keys, Home and End move between its bands.
      strip.setAttribute("role", "toolbar");
      strip.setAttribute("aria-label", "Sections in this render: press one to play from there");
      strip.addEventListener("keydown", function (event) {
        const bands = Array.from(strip.querySelectorAll("[data-strip-piece]"));
        const from = bands.indexOf(document.activeElement);
        if (from < 0) return;
        let to = from;
        if (event.key === "ArrowRight" || event.key === "ArrowDown") to = Math.min(bands.length - 1, from + 1);
        else if (event.key === "ArrowLeft" || event.key === "ArrowUp") to = Math.max(0, from - 1);
        else if (event.key === "Home") to = 0;
        else if (event.key === "End") to = bands.length - 1;
        else return;
        event.preventDefault();
        bands[from].tabIndex = -1;
        bands[to].tabIndex = 0;
        bands[to].focus();
      });
      strip.dataset.sectionStrip = "";
      strip.addEventListener("click", function (event) {
        const band = event.target.closest("[data-strip-piece]");
        const q = player();
        if (!band || !q) return;
        const piece = timeline[Number(band.dataset.stripPiece)];
        if (!piece) return;
        if (loop && (piece.start < loop.start - 0.01 || piece.start >= loop.end)) stopLoop();
        q.seek(piece.start);
        markNow();
      });
      ["pointerover", "focusin"].forEach(function (name) {
        strip.addEventListener(name, function (event) {
          pointed = event.target.closest("[data-strip-piece]");
          markNow();
        });
      });
      ["pointerout", "focusout"].forEach(function (name) {
        strip.addEventListener(name, function () {
          pointed = null;
          markNow();
        });
      });
      caption = document.createElement("p");
      caption.className = "section-strip-now small";
      caption.setAttribute("aria-hidden", "true"); // the bands' own names say it to screen readers
      p.wave.insertAdjacentElement("afterend", strip);
      strip.insertAdjacentElement("afterend", caption);
      pointed = null;
      laidOutFor = null;
      return strip;
    }

    function layoutStrip() {
      const p = player();
      if (!p || !strip || !strip.isConnected) return;
      const duration = p.duration();
      const active = document.activeElement;
      const focused =
        active && strip.contains(active) && active.dataset.stripPiece ? Number(active.dataset.stripPiece) : -1;
      strip.textContent = "";
      laidOutFor = duration;
      strip.hidden = !(duration > 0 && timeline.length);
      if (caption) caption.hidden = strip.hidden;
      if (strip.hidden) return;
      const bands = timeline.map(function (piece, index) {
        const band = document.createElement("button");
        band.type = "button";
        band.className = "section-strip-band";
        band.dataset.stripPiece = String(index);
        band.tabIndex = index === Math.max(0, Math.min(focused, timeline.length - 1)) ? 0 : -1;
        const left = Math.max(0, Math.min(1, piece.start / duration));
        const right = Math.max(left, Math.min(1, piece.end / duration));
        band.style.left = left * 100 + "%";
        band.style.width = (right - left) * 100 + "%";
        band.style.setProperty("--section-hue", String(hue(piece.colour)));
        const when = clock(piece.start) + "\u2013" + clock(piece.end);
        band.title = piece.name + ": bars " + piece.first + "\u2013" + piece.last + ", " + when;
        band.setAttribute("aria-label", "Play from " + piece.name + " (" + when + ")");
        strip.appendChild(band);
        return band;
      });
      bands.forEach(function (band, index) {
        fitLabel(band, timeline[index].name);
      });
      // A relayout keeps the keyboard's place.
      if (focused >= 0) bands[Math.min(focused, bands.length - 1)].focus();
      markNow();
    }

    function markNow() {
      const p = player();
      if (!p || !strip) return;
      const now = p.position();
      let playing = null;
      strip.querySelectorAll("[data-strip-piece]").forEach(function (band) {
        const piece = timeline[Number(band.dataset.stripPiece)];
        const on = Boolean(piece) && now >= piece.start && now < piece.end;
        band.classList.toggle("is-now", on);
        if (on) {
          band.setAttribute("aria-current", "true");
          playing = piece;
        } else {
          band.removeAttribute("aria-current");
        }
      });
      if (caption) {
        const shown = pointed && pointed.isConnected ? timeline[Number(pointed.dataset.stripPiece)] : null;
        const text = shown
          ? pieceText(shown) + " \u00b7 from " + clock(shown.start)
          : playing
            ? "Now: " + pieceText(playing)
            : "\u00a0";
        if (caption.textContent !== text) caption.textContent = text;
      }
    }

    // Follow the render the player plays (on load, after htmx swaps the player in, after a live swap).
    function follow() {
      const p = player();
      if (!p) return;
      ensureStrip(p);
      const renderId = p.root.dataset.renderId;
      if (!renderId) return;
      const ticket = ++asked;
      api("GET", "/api/renders/" + renderId + "/").then(function (result) {
        const q = player();
        if (ticket !== asked || !result.ok || !q || q.root.dataset.renderId !== String(result.data.id)) return;
        const before = heard;
        heard = result.data;
        timeline = buildTimeline(heard);
        ensureStrip(q);
        layoutStrip();
        if (loop && before && before.id !== heard.id) moveLoop();
      });
    }

    // --- looping one section in the player ---------------------------------------------------------

    let loop = null; // {section, start, end} in seconds of the render heard
    let loopJumpAt = 0; // when the last jump back was asked (performance.now()), 0: none on its way
    let loopTimer = null;

    function showLoopButtons() {
      card.querySelectorAll("[data-loop]").forEach(function (button) {
        const on = Boolean(loop) && Number(button.dataset.loop) === loop.section;
        button.setAttribute("aria-pressed", on ? "true" : "false");
      });
    }

    function stopLoop() {
      loop = null;
      loopJumpAt = 0;
      clearInterval(loopTimer);
      loopTimer = null;
      showLoopButtons();
    }

    // A new render heard (a live swap, another render): the loop keeps its section, where that plays now.
    function moveLoop() {
      const place = placeOf(loop.section);
      if (!place) {
        stopLoop();
        return;
      }
      loop = { section: loop.section, start: place.start, end: place.end };
      loopJumpAt = 0;
    }

    function checkLoop() {
      const p = player();
      if (!loop || !p || !p.isPlaying()) return;
      const now = p.position();
      if (now < loop.end - LOOP_EARLY_S) {
        if (now < loop.end - 0.3) loopJumpAt = 0; // the jump back has happened
        return;
      }
      if (loopJumpAt && performance.now() - loopJumpAt < LOOP_JUMP_WAIT_MS) return;
      if (now > loop.end + LOOP_LEFT_S) {
        stopLoop();
        return;
      }
      loopJumpAt = performance.now();
      p.seek(loop.start);
    }

    function startLoop(sectionIndex) {
      const p = player();
      if (!p) {
        showError("Loops play in the player: render the song first.");
        return;
      }
      const place = placeOf(sectionIndex);
      if (!place) {
        showError(
          heard
            ? sections[sectionIndex].name + " is not in the version playing."
            : "The player is still loading; try again."
        );
        return;
      }
      loop = { section: sectionIndex, start: place.start, end: place.end };
      loopJumpAt = 0;
      showLoopButtons();
      p.seek(place.start);
      if (!p.isPlaying()) p.togglePlay();
      clearInterval(loopTimer);
      loopTimer = setInterval(checkLoop, LOOP_TICK_MS);
    }

    card.querySelectorAll("[data-loop]").forEach(function (button) {
      button.addEventListener("click", function () {
        showError("");
        if (button.getAttribute("aria-pressed") === "true") stopLoop();
        else startLoop(Number(button.dataset.loop));
      });
    });

    // Media events do not bubble, but they pass the document on their way down: this hears whichever
    // <audio> the player has now.
    document.addEventListener(
      "timeupdate",
      function (event) {
        const p = player();
        if (!p || event.target !== p.audio) return;
        checkLoop();
        if (strip && Math.abs(p.duration() - (laidOutFor || 0)) > 0.05) layoutStrip();
        else markNow();
      },
      true
    );
    ["loadedmetadata", "durationchange", "seeked"].forEach(function (name) {
      document.addEventListener(
        name,
        function (event) {
          const p = player();
          if (!p || event.target !== p.audio) return;
          if (strip && Math.abs(p.duration() - (laidOutFor || 0)) > 0.05) layoutStrip();
          else markNow();
        },
        true
      );
    });
    document.addEventListener("backtrack:player-ready", follow);
    document.addEventListener("backtrack:render-changed", follow);
    let resizeTimer = null;
    window.addEventListener("resize", function () {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(function () {
        layoutStrip();
        fitCardBands();
      }, 100);
    });
    follow();

    // --- the card's bands: add a section to the arrangement ---------------------------------------

    function fitCardBands() {
      card.querySelectorAll(".section-band[data-section]").forEach(function (band) {
        fitLabel(band, String(sections[Number(band.dataset.section)].name));
      });
    }

    card.querySelectorAll("button[data-section]").forEach(function (band) {
      band.addEventListener("click", function () {
        add(Number(band.dataset.section));
      });
    });
    fitCardBands();

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
        showStatus("");
        const arrangement = items.map(itemText);
        // While something plays, the arrangement is heard at once (instant listening, listen.js), with
        // the key, tempo and mix of the form; it answers false when nothing plays.
        const listen = window.Backtrack && window.Backtrack.listen;
        if (typeof listen === "function" && listen({ arrangement: arrangement })) {
          showStatus("Your arrangement plays from its start as soon as its first seconds are ready.");
          return;
        }
        renderButton.disabled = true;
        const body = { revision: data.revision, arrangement: arrangement };
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
        // The builder holds whole sections: a bar range that is no section is left out.
        const item = parseItem(text);
        if (item && item.section >= 0) items.push({ section: item.section, repeats: item.repeats });
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
