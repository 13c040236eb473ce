// c10d process groups for data-parallel training: a TCPStore (or a FileStore), a
// ProcessGroupGloo for CPU tensors and, when built with the CUDA headers, a
// ProcessGroupNCCL for CUDA tensors. A C ABI for src/dist/; errors come back as
// messages, never as exceptions crossing into Rust.
#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef STARGAN_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "shim.h"

struct StarganGroup {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
};

namespace {

char* message(const std::string& what) {
  char* out = static_cast<char*>(std::malloc(what.size() + 1));
  if (out != nullptr) std::memcpy(out, what.c_str(), what.size() + 1);
  return out;
}

template <typename F>
char* guarded(F&& f) {
  try {
    f();
    return nullptr;
  } catch (const c10::Error& e) {
    return message(e.what_without_backtrace());
  } catch (const std::exception& e) {
    return message(e.what());
  } catch (...) {
    return message("unknown C++ exception");
  }
}

std::vector<at::Tensor> tensors(at::Tensor** ts, size_t n) {
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.push_back(*ts[i]);
  return out;
}

}  // namespace

extern "C" {

bool stargan_nccl_built() {
#ifdef STARGAN_NCCL
  return true;
#else
  return false;
#endif
}

// backend: 0 = Gloo, 1 = NCCL. store: 0 = TCP at host:port (this process serves it when
// is_server), 1 = a file at `host_or_path`. Every key goes under `prefix`.
char* stargan_group_new(int backend, int store_kind, const char* host_or_path, int port, bool is_server, int rank,
                        int size, int64_t timeout_ms, const char* prefix, StarganGroup** out) {
  *out = nullptr;
  return guarded([&] {
    auto timeout = std::chrono::milliseconds(timeout_ms);
    c10::intrusive_ptr<c10d::Store> base;
    if (store_kind == 0) {
      c10d::TCPStoreOptions o;
      o.port = static_cast<std::uint16_t>(port);
      o.isServer = is_server;
      o.numWorkers = size;
      o.waitWorkers = false;
      o.timeout = timeout;
      base = c10::make_intrusive<c10d::TCPStore>(std::string(host_or_path), o);
    } else {
      base = c10::make_intrusive<c10d::FileStore>(std::string(host_or_path), size);
    }
    base->setTimeout(timeout);
    auto store = c10::make_intrusive<c10d::PrefixStore>(std::string(prefix), base);
    c10::intrusive_ptr<c10d::Backend> pg;
    if (backend == 1) {
#ifdef STARGAN_NCCL
      auto o = c10d::ProcessGroupNCCL::Options::create();
      o->timeout = timeout;
      pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, o);
#else
      throw std::runtime_error("this stargan was built without NCCL (the CUDA headers were missing at build time)");
#endif
    } else {
      auto o = c10d::ProcessGroupGloo::Options::create(timeout);
      const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
      if (ifname != nullptr && *ifname != '\0') {
        o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(std::string(ifname)));
      } else if (store_kind == 0 && (std::string(host_or_path) == "127.0.0.1" || std::string(host_or_path) == "localhost")) {
        o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      } else {
        o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, o);
    }
    *out = new StarganGroup{store, pg};
  });
}

void stargan_group_free(StarganGroup* g) { delete g; }

char* stargan_group_allreduce_sum(StarganGroup* g, at::Tensor** ts, size_t n) {
  return guarded([&] {
    auto t = tensors(ts, n);
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    auto work = g->backend->allreduce(t, o);
    work->wait();
  });
}

char* stargan_group_broadcast(StarganGroup* g, at::Tensor** ts, size_t n, int root) {
  return guarded([&] {
    auto t = tensors(ts, n);
    for (auto& one : t) {
      std::vector<at::Tensor> single{one};
      c10d::BroadcastOptions o;
      o.rootRank = root;
      auto work = g->backend->broadcast(single, o);
      work->wait();
    }
  });
}

char* stargan_group_barrier(StarganGroup* g) {
  return guarded([&] {
    auto work = g->backend->barrier(c10d::BarrierOptions());
    work->wait();
  });
}

}  // extern "C"
