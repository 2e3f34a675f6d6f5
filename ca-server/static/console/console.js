// The operator console's forms that are signed in the signing client (ca-signer, or the
// national client) through signer.js (window.Signer, shared with the portal): no inline
// script, no framework. Each form[data-sign] is sent only with the
// CMS the signing client made; what is signed is built here from the page's data, exactly as
// the administration API expects it. Refusals are shown next to the button that was pressed.
"use strict";

(function () {
  function base64Text(text) {
    return window.Signer.textToBase64(text);
  }

  function errorBox(form) {
    var button = form.querySelector("button[type=submit]");
    var id = button && button.getAttribute("aria-describedby");
    return (id && document.getElementById(id)) || form.querySelector(".field-error");
  }

  function showError(box, message, focus) {
    if (box) box.textContent = message;
    if (focus) {
      focus.setAttribute("aria-invalid", "true");
      focus.focus();
    }
  }

  // What a form signs, with the key it needs: {data: base64, keyType}; throws {message, field}.
  async function payload(form) {
    switch (form.dataset.sign) {
      case "login": {
        var r = await fetch("/api/v1/auth/challenge", { method: "POST", credentials: "same-origin" });
        var answer = await r.json();
        if (!r.ok) throw { message: answer.message || "сервер не выдал вызов для входа" };
        return { data: answer.nonce, keyType: "AUTHENTICATION" };
      }
      case "statement":
        return { data: form.dataset.statement, keyType: "SIGNATURE" };
      case "refuse": {
        var reason = form.querySelector("textarea[name=reason]");
        if (!reason.value.trim()) {
          throw { message: "Укажите причину отказа: её получит заявитель.", field: reason, box: document.getElementById("error-refuse") };
        }
        var refusal = { action: "operator-refuse", application: form.dataset.application, reason: reason.value.trim() };
        return { data: base64Text(JSON.stringify(refusal)), keyType: "SIGNATURE" };
      }
      case "revoke": {
        var serial = form.querySelector("input[name=serial]");
        var value = serial.value.trim().toLowerCase();
        if (!/^[0-9a-f]{2,40}$/.test(value)) {
          throw { message: "Серийный номер — от 2 до 40 шестнадцатеричных цифр.", field: serial, box: document.getElementById("serial-error") };
        }
        serial.removeAttribute("aria-invalid");
        document.getElementById("serial-error").textContent = "";
        var reason = form.querySelector("select[name=reason]").value;
        return { data: base64Text(JSON.stringify({ action: "revoke", serial: value, reason: reason })), keyType: "SIGNATURE" };
      }
    }
    throw { message: "неизвестная форма" };
  }

  async function submitSigned(event) {
    var form = event.currentTarget;
    event.preventDefault();
    var box = errorBox(form);
    var button = form.querySelector("button[type=submit]");
    if (box) box.textContent = "";
    button.disabled = true;
    try {
      var what = await payload(form);
      if (box) box.textContent = "Подпишите в программе для подписи…";
      var cms = await window.Signer.signBase64(what.keyType, what.data, false);
      form.querySelector("input[name=cms]").value = cms;
      form.submit();
    } catch (e) {
      button.disabled = false;
      if (e instanceof window.Signer.SignerError) {
        window.Signer.report(e, box);
        button.focus();
      } else {
        showError(e && e.box ? e.box : box, (e && e.message) || String(e), e && e.field ? e.field : button);
      }
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-sign]").forEach(function (form) {
      form.addEventListener("submit", submitSigned);
    });
  });
})();
