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

  // Registration: the statement the portal rebuilds (kind, IIN, BIN, email, challenge), signed
  // with the AUTH key of the certificate chosen before.
  function registration(form, status) {
    var iin = field(form, "iin").value;
    if (!iin) {
      var error = new Error(status.dataset.chooseFirst);
      error.portal = true;
      return Promise.reject(error);
    }
    var kind = form.querySelector('input[name="kind"]:checked').value;
    var bin = kind === "legal-entity" ? field(form, "bin").value : null;
    var email = field(form, "email").value.trim();
    return challenge().then(function (c) {
      var body = { kind: kind, iin: iin, bin: bin, email: email, challenge: c };
      return postJson("/api/v1/registration/statement", body, false).then(function (answer) {
        return window.Signer.signBase64("AUTHENTICATION", answer.statement, false, form.dataset.storage).then(
          function (cms) {
            field(form, "challenge").value = c;
            field(form, "cms").value = cms;
          }
        );
      });
    });
  }

  // Recovery by EDS: the recovery statement (login, challenge), signed with the AUTH key.
  function recovery(form) {
    var login = field(form, "login").value.trim();
    return challenge().then(function (c) {
      return postJson("/recovery/statement", { login: login, challenge: c }, true).then(function (answer) {
        return window.Signer.signBase64("AUTHENTICATION", answer.statement, false, form.dataset.storage).then(
          function (cms) {
            field(form, "challenge").value = c;
            field(form, "cms").value = cms;
          }
        );
      });
    });
  }

  // The registration page's "choose a certificate": the signing client's key, its details
  // as the portal reads them, shown before anything is signed.
  function chooseCertificate(form, status) {
    window.Signer.working(status);
    return window.Signer.keyInfo(form.dataset.storage)
      .then(function (info) {
        return postJson("/register/certificate", { pem: info.pem }, true);
      })
      .then(
        function (cert) {
          field(form, "iin").value = cert.iin || "";
          field(form, "bin").value = cert.bin || "";
          document.getElementById("cert-iin").textContent = cert.iin || "—";
          document.getElementById("cert-bin").textContent = cert.bin || "—";
          document.getElementById("cert-name").textContent = cert.name || "—";
          document.getElementById("cert-email").textContent = cert.email || "—";
          document.getElementById("cert-validity").textContent = cert.not_before + " — " + cert.not_after;
          document.getElementById("certificate").hidden = false;
          var email = field(form, "email");
          if (!email.value && cert.email) {
            email.value = cert.email;
          }
          if (cert.bin) {
            document.getElementById("kind-legal").checked = true;
          }
          status.textContent = "";
        },
        function (error) {
          fail(status, error);
        }
      );
  }

  var flows = { challenge: edsLogin, registration: registration, recovery: recovery };

  function bind(form) {
    var flow = flows[form.dataset.sign];
    var submit = form.querySelector('button[type="submit"]');
    var status = submit ? document.getElementById(submit.getAttribute("aria-describedby")) : null;
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
  var choose = document.getElementById("choose-certificate");
  if (choose) {
    choose.addEventListener("click", function () {
      chooseCertificate(choose.form, document.getElementById(choose.getAttribute("aria-describedby")));
    });
  }
})();
