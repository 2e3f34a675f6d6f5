// The account pages' signing steps (login by EDS, registration, recovery by EDS), on top of
// signer.js. Forms opt in with data-sign; the signature goes into their hidden fields and the
// form is then submitted normally (the server does the checking).
(function () {
  "use strict";

  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  // POST JSON to the portal; resolves with the answer's JSON, rejects with its message.
  function postJson(path, body, pageRoute) {
    var headers = { "Content-Type": "application/json" };
    if (pageRoute) {
      headers["X-CSRF-Token"] = csrf();
    }
    return fetch(path, {
      method: "POST",
      headers: headers,
      body: body === null ? "" : JSON.stringify(body),
      credentials: "same-origin"
    }).then(function (response) {
      return response.json().then(function (json) {
        if (!response.ok) {
          var error = new Error(json.message || String(response.status));
          error.portal = true;
          throw error;
        }
        return json;
      });
    });
  }

  function challenge() {
    return postJson("/api/v1/challenge", null, false).then(function (answer) {
      return answer.challenge;
    });
  }

  // Report a failure next to the button: the signing client's refusal in words, or the
  // portal's message as it came.
  function fail(status, error) {
    if (error && error.portal) {
      status.textContent = error.message;
      status.classList.add("error");
    } else {
      window.Signer.report(error, status);
    }
  }

  function field(form, name) {
    return form.querySelector('[name="' + name + '"]');
  }

  // Login by EDS: the AUTH key signs the challenge (attached).
  function edsLogin(form, status) {
    return challenge().then(function (c) {
      return window.Signer.signBase64("AUTHENTICATION", c, false, form.dataset.storage).then(function (cms) {
        field(form, "cms").value = cms;
      });
    });
  }

  var flows = { challenge: edsLogin };

  function bind(form) {
    var flow = flows[form.dataset.sign];
    var status = form.querySelector(".sign-status");
    if (!flow || !status) {
      return;
    }
    form.addEventListener("submit", function (event) {
      if (form.dataset.signed === "yes") {
        return;
      }
      event.preventDefault();
      window.Signer.working(status);
      flow(form, status).then(
        function () {
          form.dataset.signed = "yes";
          form.submit();
        },
        function (error) {
          fail(status, error);
        }
      );
    });
  }

  window.PortalAccount = { postJson: postJson, challenge: challenge, fail: fail, field: field, flows: flows };
  document.querySelectorAll("form[data-sign]").forEach(bind);
})();
