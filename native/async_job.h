// Runs a crypto operation on the libuv threadpool and settles a Promise with its result, so
// ML-KEM work does not block a busy server's event loop. Execute() runs off the JS thread and
// must touch no JS values; Result() runs back on the JS thread.
#pragma once
#include <napi.h>

#include <string>
#include <utility>

#include "errors.h"

namespace qt {

// Outcome of an operation that may run on any thread.
struct OpStatus {
  const char* code = nullptr;  // nullptr: success
  std::string message;
  std::string detail;  // OpenSSL's reason, drained on the thread that failed

  bool failed() const { return code != nullptr; }
  bool Fail(const char* c, std::string msg) {
    code = c;
    message = std::move(msg);
    detail = DrainOpenSslErrors();
    return false;
  }
  // Throws on the JS thread; returns true when it did.
  bool ThrowIfFailed(Napi::Env env) const {
    if (!failed()) return false;
    Napi::Object err = ToError(env);
    if (!err.IsEmpty()) napi_throw(env, err);  // else the error constructor's exception is pending
    return true;
  }
  // Empty (with an exception pending) when the JS error constructor threw.
  Napi::Object ToError(Napi::Env env) const {
    Napi::Object err = MakeError(env, code, message);
    if (!err.IsEmpty() && !detail.empty()) err.Set("detail", detail);
    return err;
  }
};

class PromiseJob : public Napi::AsyncWorker {
 public:
  explicit PromiseJob(Napi::Env env) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  virtual void Run(OpStatus* status) = 0;
  virtual Napi::Value Result(Napi::Env env) = 0;

 private:
  void Execute() override { Run(&status_); }
  void OnOK() override {
    Napi::Env env = Env();
    if (status_.failed()) {
      Napi::Object err = status_.ToError(env);
      deferred_.Reject(err.IsEmpty() ? env.GetAndClearPendingException().Value() : err);
      return;
    }
    Napi::Value v = Result(env);
    if (env.IsExceptionPending()) {
      deferred_.Reject(env.GetAndClearPendingException().Value());
    } else {
      deferred_.Resolve(v);
    }
  }

  Napi::Promise::Deferred deferred_;
  OpStatus status_;
};

// Creates a job, queues it on the threadpool and returns its Promise.
template <typename Job, typename... Args>
Napi::Value QueueJob(Napi::Env env, Args&&... args) {
  auto* job = new Job(env, std::forward<Args>(args)...);
  Napi::Promise promise = job->Promise();
  job->Queue();
  return promise;
}

}  // namespace qt
