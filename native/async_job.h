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

// A job owns copies of its inputs and its own references to keys, made in its constructor. The
// libuv work item and the Promise are created only after that (Start): creating them can run JS
// (async_hooks init hooks, promise hooks), which could otherwise destroy a key or detach a buffer
// the job had not yet copied.
class PromiseJob {
 public:
  PromiseJob() = default;
  virtual ~PromiseJob() = default;
  PromiseJob(const PromiseJob&) = delete;
  PromiseJob& operator=(const PromiseJob&) = delete;

  // Queues the job and returns its Promise; takes ownership of `job` (freed after it settles, or
  // at once when it cannot be queued, with an exception pending).
  static Napi::Value Start(Napi::Env env, PromiseJob* job) {
    napi_value promise = nullptr, name = nullptr;
    if (napi_create_promise(env, &job->deferred_, &promise) != napi_ok ||
        napi_create_string_utf8(env, "quantum-tunnel:job", NAPI_AUTO_LENGTH, &name) != napi_ok ||
        napi_create_async_work(env, nullptr, name, Execute, Complete, job, &job->work_) != napi_ok) {
      Abandon(env, job);
      return Napi::Value();
    }
    if (napi_queue_async_work(env, job->work_) != napi_ok) {
      napi_delete_async_work(env, job->work_);
      job->work_ = nullptr;
      Abandon(env, job);
      return Napi::Value();
    }
    return Napi::Value(env, promise);
  }

 protected:
  virtual void Run(OpStatus* status) = 0;
  virtual Napi::Value Result(Napi::Env env) = 0;

 private:
  // A job that was never queued: its Promise (if made) is rejected with the pending exception or
  // a generic error, so no caller waits forever, and the job is freed.
  static void Abandon(napi_env env, PromiseJob* job) {
    if (job->deferred_ != nullptr) {
      napi_value err = nullptr;
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) {
        napi_get_and_clear_last_exception(env, &err);
        napi_reject_deferred(env, job->deferred_, err);
        napi_throw(env, err);  // still this call's failure
      } else {
        Napi::Object e = MakeError(Napi::Env(env), code::kCryptoFailure, "could not queue a threadpool job");
        if (!e.IsEmpty()) napi_reject_deferred(env, job->deferred_, e);
        ThrowError(Napi::Env(env), code::kCryptoFailure, "could not queue a threadpool job");
      }
    } else {
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (!pending) ThrowError(Napi::Env(env), code::kCryptoFailure, "could not queue a threadpool job");
    }
    delete job;
  }

  // On a threadpool thread: no JS values.
  static void Execute(napi_env, void* data) {
    auto* job = static_cast<PromiseJob*>(data);
    job->Run(&job->status_);
  }

  // Back on the JS thread: settle the Promise, free the work item and the job.
  static void Complete(napi_env raw_env, napi_status status, void* data) {
    auto* job = static_cast<PromiseJob*>(data);
    Napi::Env env(raw_env);
    {
      Napi::HandleScope scope(env);
      if (status != napi_ok && !job->status_.failed()) job->status_.Fail(code::kCryptoFailure, "the threadpool job was cancelled");
      if (job->status_.failed()) {
        Napi::Object err = job->status_.ToError(env);
        napi_value reason = err.IsEmpty() ? env.GetAndClearPendingException().Value() : static_cast<napi_value>(err);
        napi_reject_deferred(env, job->deferred_, reason);
      } else {
        Napi::Value v = job->Result(env);
        if (env.IsExceptionPending()) {
          napi_reject_deferred(env, job->deferred_, env.GetAndClearPendingException().Value());
        } else {
          napi_resolve_deferred(env, job->deferred_, v);
        }
      }
    }
    napi_delete_async_work(env, job->work_);
    delete job;
  }

  napi_deferred deferred_ = nullptr;
  napi_async_work work_ = nullptr;
  OpStatus status_;
};

// Creates a job (which copies its inputs and takes its key references), then queues it and
// returns its Promise.
template <typename Job, typename... Args>
Napi::Value QueueJob(Napi::Env env, Args&&... args) {
  return PromiseJob::Start(env, new Job(std::forward<Args>(args)...));
}

}  // namespace qt
