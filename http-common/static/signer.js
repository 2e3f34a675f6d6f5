// The signing client from a page: a WebSocket to the local signing client (ca-signer, or the
// national one) speaking the kz.gov.pki.knca.commonUtils protocol. Generic: no page-specific
// code; any page that includes it gets window.Signer.
//
// The client's address comes from <meta name="signer-url"> (default ws://127.0.0.1:13579).
// Refusals are SignerError with .code one of "unreachable" (no client running),
// "action.canceled" (the person refused), "storage.empty" (no key of that type), or the
// client's other codes; Signer.report(error, element) writes them next to the button in
// words taken from the element's data-unreachable / data-canceled / data-no-key / data-failed
// attributes (so the texts stay in the page's language).
(function () {
  "use strict";

  var MODULE = "kz.gov.pki.knca.commonUtils";

  function SignerError(code) {
    this.name = "SignerError";
    this.code = code;
    this.message = "signing client: " + code;
  }
  SignerError.prototype = Object.create(Error.prototype);

  function signerUrl() {
    var meta = document.querySelector('meta[name="signer-url"]');
    return meta && meta.content ? meta.content : "ws://127.0.0.1:13579";
  }

  // One connection: requests go one at a time, each answered by the next message.
  function Session(socket) {
    this.socket = socket;
    this.queue = Promise.resolve();
  }

  Session.prototype.call = function (method, args) {
    var socket = this.socket;
    var next = this.queue.then(function () {
      return new Promise(function (resolve, reject) {
        if (socket.readyState !== WebSocket.OPEN) {
          reject(new SignerError("unreachable"));
          return;
        }
        socket.onmessage = function (event) {
          socket.onmessage = null;
          socket.onclose = null;
          var answer;
          try {
            answer = JSON.parse(event.data);
          } catch (e) {
            reject(new SignerError("signing.failed"));
            return;
          }
          if (String(answer.code) === "200") {
            resolve(answer.responseObject);
          } else {
            reject(new SignerError(answer.message || "signing.failed"));
          }
        };
        socket.onclose = function () {
          reject(new SignerError("unreachable"));
        };
        socket.send(JSON.stringify({ module: MODULE, method: method, args: args }));
      });
    });
    // A failed call does not stop the next one.
    this.queue = next.catch(function () {});
    return next;
  };

  Session.prototype.close = function () {
    this.socket.close();
  };

  // Open a session: resolves after the client's greeting.
  function connect() {
    return new Promise(function (resolve, reject) {
      var socket;
      try {
        socket = new WebSocket(signerUrl());
      } catch (e) {
        reject(new SignerError("unreachable"));
        return;
      }
      var settled = false;
      socket.onerror = function () {
        if (!settled) {
          settled = true;
          reject(new SignerError("unreachable"));
        }
      };
      socket.onclose = socket.onerror;
      socket.onmessage = function () {
        // The greeting: {"result":{"version":…}}.
        settled = true;
        socket.onmessage = null;
        socket.onerror = null;
        socket.onclose = null;
        resolve(new Session(socket));
      };
    });
  }

  // The storage to use: the form's data-storage, else the first active token, else PKCS12.
  function storage(session, preferred) {
    if (preferred) {
      return Promise.resolve(preferred);
    }
    return session.call("getActiveTokens", []).then(function (tokens) {
      return tokens && tokens.length ? tokens[0] : "PKCS12";
    });
  }

  // getKeyInfo of the storage: {iin, bin, subjectCn, subjectDn, certNotBefore, certNotAfter, pem, keyType, …}.
  function keyInfo(preferred) {
    return connect().then(function (session) {
      return storage(session, preferred)
        .then(function (name) {
          return session.call("getKeyInfo", [name]);
        })
        .finally(function () {
          session.close();
        });
    });
  }

  // A CAdES signature (base64 DER) over base64 data, with the key of keyType
  // ("AUTHENTICATION" or "SIGNATURE"), attached unless detached is true.
  function signBase64(keyType, data, detached, preferred) {
    return connect().then(function (session) {
      return storage(session, preferred)
        .then(function (name) {
          return session.call("createCAdESFromBase64", [name, keyType, data, !detached]);
        })
        .finally(function () {
          session.close();
        });
    });
  }

  // UTF-8 text as base64.
  function textToBase64(text) {
    var bytes = new TextEncoder().encode(text);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) {
      binary += String.fromCharCode(bytes[i]);
    }
    return btoa(binary);
  }

  // Write the refusal next to the button, in the element's words.
  function report(error, element) {
    if (!element) {
      return;
    }
    var code = error && error.code ? error.code : "signing.failed";
    var key = {
      unreachable: "unreachable",
      "action.canceled": "canceled",
      "storage.empty": "noKey"
    }[code] || "failed";
    element.textContent = element.dataset[key] || code;
    element.classList.add("error");
  }

  // "Waiting for the signing client" next to the button.
  function working(element) {
    if (element) {
      element.textContent = element.dataset.working || "";
      element.classList.remove("error");
    }
  }

  window.Signer = {
    SignerError: SignerError,
    connect: connect,
    keyInfo: keyInfo,
    signBase64: signBase64,
    textToBase64: textToBase64,
    report: report,
    working: working
  };
})();
