// cudasim: run CUDA kernel sources on the CPU, for tests only.
//
// Included before a .cu source compiled by the host C++ compiler, this header
// provides the CUDA built-ins fastnorm's kernels use (threadIdx and friends,
// __syncthreads, warp shuffles, __shared__, atomics, a few intrinsics) and
// `cudasim::launch`, which runs a kernel's grid block after block. The threads
// of a block are fibers (each with its own stack) switched cooperatively on
// one OS thread: a thread runs until it reaches a barrier, and a barrier is
// released once every thread that has not exited reaches it. A warp shuffle
// is a barrier of the warp's 32 lanes (values exchanged through a slot per
// lane), __syncthreads one of the whole block. __shared__ variables are
// static: one copy, seen by every thread of the running block.
//
// What it checks: barriers that cannot be met (threads of a warp waiting,
// some at __syncthreads, some at a shuffle, are reported as a deadlock;
// threads that have exited count as arrived, as on the GPU), full-mask
// shuffles in a warp with exited lanes, block sizes above
// __launch_bounds__, and argument sizes against the kernel's parameters. What it cannot see: races (the interleaving is one
// fixed order), memory errors, timing, and GPU arithmetic details (no fused
// multiply-add contraction, no flush-to-zero of float32 subnormals, host libm
// instead of CUDA's math functions). It does not replace a run on a GPU.
#pragma once
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <exception>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#if !defined(__x86_64__)
#error "cudasim switches fibers with x86-64 assembly"
#endif

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __shared__ static
#define __restrict__ __restrict
#define __constant__ static

struct uint3 {
    unsigned x, y, z;
};
typedef uint3 dim3;

// ------------------------------------------------------------------ fibers ---

extern "C" void cudasim_switch(void** save_sp, void* next_sp);
extern "C" void cudasim_fiber_start();
extern "C" void cudasim_fiber_main(void* fiber);

// cudasim_switch(save, next): push the callee-saved registers and the
// floating-point control words, save the stack pointer in *save, load
// `next` and pop the same frame from it. A new fiber's stack holds such a
// frame whose return address is cudasim_fiber_start, which calls
// cudasim_fiber_main(r12 = the fiber).
asm(R"(
    .text
    .globl cudasim_switch
    .hidden cudasim_switch
    .type cudasim_switch, @function
cudasim_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size cudasim_switch, .-cudasim_switch

    .globl cudasim_fiber_start
    .hidden cudasim_fiber_start
    .type cudasim_fiber_start, @function
cudasim_fiber_start:
    movq %r12, %rdi
    call cudasim_fiber_main
    ud2
    .size cudasim_fiber_start, .-cudasim_fiber_start
)");

namespace cudasim {

enum State { RUNNABLE, AT_BLOCK_BARRIER, AT_WARP_BARRIER, DONE };

struct Fiber {
    void* sp;
    uint3 tid;
    int linear;  // threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)
    State state;
    int shfl_parity;
    bool shuffling;  // waits at a warp barrier for a shuffle (not __syncwarp)
};

constexpr size_t kStackBytes = 64 * 1024;
constexpr int kMaxThreads = 1024;

struct Grid {
    uint3 block_idx, block_dim, grid_dim;
    std::vector<Fiber> fibers;
    char* stacks = nullptr;
    size_t stacks_bytes = 0;
    void* scheduler_sp = nullptr;
    Fiber* current = nullptr;
    void (*body)(void*) = nullptr;
    void* body_arg = nullptr;
    std::string error;  // set by a thread that failed; the launch reports it
    unsigned long long slots[2][kMaxThreads];  // shuffle exchange, per lane, two rounds
};

inline Grid g;

inline Fiber* self() { return g.current; }

struct Fail : std::runtime_error {
    using std::runtime_error::runtime_error;
};

inline void yield(State why)
{
    Fiber* f = g.current;
    f->state = why;
    cudasim_switch(&f->sp, g.scheduler_sp);
}

}  // namespace cudasim

extern "C" __attribute__((used, visibility("hidden"))) void cudasim_fiber_main(void* p)
{
    using namespace cudasim;
    Fiber* f = static_cast<Fiber*>(p);
    try {
        g.body(g.body_arg);
    } catch (const std::exception& e) {
        if (g.error.empty()) g.error = e.what();
    } catch (...) {
        if (g.error.empty()) g.error = "unknown C++ exception in a kernel thread";
    }
    f->state = DONE;
    cudasim_switch(&f->sp, g.scheduler_sp);
}

#define threadIdx (::cudasim::g.current->tid)
#define blockIdx (::cudasim::g.block_idx)
#define blockDim (::cudasim::g.block_dim)
#define gridDim (::cudasim::g.grid_dim)
#define warpSize 32

inline void __syncthreads() { cudasim::yield(cudasim::AT_BLOCK_BARRIER); }
inline void __syncwarp(unsigned = 0xffffffffu) { cudasim::yield(cudasim::AT_WARP_BARRIER); }
inline void __threadfence() {}
inline void __threadfence_block() {}

// ---------------------------------------------------------------- shuffles ---

namespace cudasim {

// Every lane puts its value in its slot, the warp meets, each lane reads the
// slot of `source(lane)`. Two slot sets used in turn, so that a lane that
// runs ahead to the next shuffle cannot overwrite a value still being read.
template <typename T, typename Source>
T shuffle(unsigned mask, T v, Source source)
{
    static_assert(sizeof(T) <= sizeof(unsigned long long), "shuffle of a value over 8 bytes");
    if (mask != 0xffffffffu) throw Fail("cudasim: only full-warp shuffle masks are supported");
    Fiber* f = g.current;
    const int lane = f->linear % 32, base = f->linear - lane;
    const int parity = f->shfl_parity;
    f->shfl_parity ^= 1;
    memcpy(&g.slots[parity][f->linear], &v, sizeof(T));
    f->shuffling = true;
    yield(AT_WARP_BARRIER);  // the scheduler refuses a shuffle in a warp with exited lanes
    f->shuffling = false;
    const int src = source(lane);
    if (src < 0 || src >= 32) return v;
    const int other = base + src;
    if (other >= (int)g.fibers.size())
        throw Fail("cudasim: shuffle reads lane " + std::to_string(src) + ", beyond the block");
    T out;
    memcpy(&out, &g.slots[parity][other], sizeof(T));
    return out;
}

}  // namespace cudasim

template <typename T>
T __shfl_sync(unsigned mask, T v, int src, int width = 32)
{
    return cudasim::shuffle(mask, v, [&](int lane) { return lane / width * width + src % width; });
}
template <typename T>
T __shfl_down_sync(unsigned mask, T v, unsigned d, int width = 32)
{
    return cudasim::shuffle(mask, v, [&](int lane) {
        return lane % width + (int)d < width ? lane + (int)d : lane;
    });
}
template <typename T>
T __shfl_up_sync(unsigned mask, T v, unsigned d, int width = 32)
{
    return cudasim::shuffle(mask, v, [&](int lane) {
        return lane % width >= (int)d ? lane - (int)d : lane;
    });
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T v, int m, int width = 32)
{
    return cudasim::shuffle(mask, v, [&](int lane) {
        const int src = lane ^ m;
        return src / width == lane / width ? src : lane;
    });
}

// ----------------------------------------------------------------- atomics ---
// One OS thread runs a block, and fibers switch only at barriers: a plain
// read-modify-write is atomic here.

template <typename T>
T atomicAdd(T* p, T v)
{
    T old = *p;
    *p = old + v;
    return old;
}
template <typename T>
T atomicMax(T* p, T v)
{
    T old = *p;
    *p = std::max(old, v);
    return old;
}
template <typename T>
T atomicMin(T* p, T v)
{
    T old = *p;
    *p = std::min(old, v);
    return old;
}
template <typename T>
T atomicOr(T* p, T v)
{
    T old = *p;
    *p = old | v;
    return old;
}
template <typename T>
T atomicExch(T* p, T v)
{
    T old = *p;
    *p = v;
    return old;
}
template <typename T>
T atomicCAS(T* p, T compare, T v)
{
    T old = *p;
    if (old == compare) *p = v;
    return old;
}

// -------------------------------------------------------------- intrinsics ---

inline float __int_as_float(int i)
{
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}
inline int __float_as_int(float f)
{
    int i;
    memcpy(&i, &f, sizeof i);
    return i;
}
inline double __longlong_as_double(long long i)
{
    double d;
    memcpy(&d, &i, sizeof d);
    return d;
}
inline long long __double_as_longlong(double d)
{
    long long i;
    memcpy(&i, &d, sizeof i);
    return i;
}
inline float rsqrtf(float v) { return 1.0f / sqrtf(v); }
inline double rsqrt(double v) { return 1.0 / sqrt(v); }
inline float rsqrt(float v) { return 1.0f / sqrtf(v); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __expf(float v) { return expf(v); }
inline float __logf(float v) { return logf(v); }
inline float __powf(float a, float b) { return powf(a, b); }
using std::max;
using std::min;

// ------------------------------------------------------------------ launch ---

namespace cudasim {

inline void run_block()
{
    const int n = (int)g.fibers.size();
    char* top_of = g.stacks;
    for (int i = 0; i < n; ++i) {
        Fiber& f = g.fibers[i];
        const unsigned bx = g.block_dim.x, by = g.block_dim.y;
        f.tid = uint3{(unsigned)i % bx, (unsigned)i / bx % by, (unsigned)i / (bx * by)};
        f.linear = i;
        f.state = RUNNABLE;
        f.shfl_parity = 0;
        f.shuffling = false;
        // the frame cudasim_switch pops: control words, r15..r12, rbx, rbp, return address
        char* top = top_of + (size_t)(i + 1) * kStackBytes;
        uint64_t* sp = reinterpret_cast<uint64_t*>(top) - 8;
        const uint32_t mxcsr = 0x1F80;
        const uint16_t fpucw = 0x037F;
        memset(sp, 0, 8 * sizeof(uint64_t));
        memcpy(reinterpret_cast<char*>(sp), &mxcsr, 4);
        memcpy(reinterpret_cast<char*>(sp) + 4, &fpucw, 2);
        sp[4] = reinterpret_cast<uint64_t>(&f);  // r12
        sp[7] = reinterpret_cast<uint64_t>(&cudasim_fiber_start);
        f.sp = sp;
    }
    int alive = n;
    for (;;) {
        for (int i = 0; i < n; ++i) {
            Fiber& f = g.fibers[i];
            if (f.state != RUNNABLE) continue;
            g.current = &f;
            cudasim_switch(&g.scheduler_sp, f.sp);
            if (f.state == DONE) --alive;
        }
        g.current = nullptr;
        if (!g.error.empty()) return;
        if (alive == 0) return;
        bool released = false;
        for (int w = 0; w < n; w += 32) {  // a warp meets when its live lanes all wait for it
            const int end = std::min(n, w + 32);
            bool all = true, any = false, exited = false, shuffle = false;
            for (int i = w; i < end; ++i) {
                const State s = g.fibers[i].state;
                exited = exited || s == DONE;
                if (s == DONE) continue;
                any = true;
                all = all && s == AT_WARP_BARRIER;
                shuffle = shuffle || g.fibers[i].shuffling;
            }
            if (any && all && exited && shuffle) {
                g.error = "cudasim: a full-mask shuffle in warp " + std::to_string(w / 32) +
                          " of block (" + std::to_string(g.block_idx.x) + ", " +
                          std::to_string(g.block_idx.y) + ", " + std::to_string(g.block_idx.z) +
                          ") after some of its lanes exited (undefined in CUDA)";
                return;
            }
            if (any && all) {
                for (int i = w; i < end; ++i)
                    if (g.fibers[i].state == AT_WARP_BARRIER) g.fibers[i].state = RUNNABLE;
                released = true;
            }
        }
        if (released) continue;
        bool all_block = true;
        for (const Fiber& f : g.fibers) all_block = all_block && (f.state == DONE || f.state == AT_BLOCK_BARRIER);
        if (all_block) {
            for (Fiber& f : g.fibers)
                if (f.state == AT_BLOCK_BARRIER) f.state = RUNNABLE;
            continue;
        }
        std::string states;
        for (int i = 0; i < n && states.size() < 300; ++i)
            states += " " + std::to_string(i) + ":" +
                      (g.fibers[i].state == AT_BLOCK_BARRIER ? "syncthreads"
                       : g.fibers[i].state == AT_WARP_BARRIER ? "warp" : "done");
        g.error = "cudasim: deadlock in block (" + std::to_string(g.block_idx.x) + ", " +
                  std::to_string(g.block_idx.y) + ", " + std::to_string(g.block_idx.z) +
                  "): threads wait at different barriers (a divergent __syncthreads or "
                  "shuffle):" + states;
        return;
    }
}

inline int run_grid(void (*body)(void*), void* arg, const unsigned* grid, const unsigned* block,
                    unsigned max_threads, std::string& error)
{
    const unsigned long long threads = (unsigned long long)block[0] * block[1] * block[2];
    if (threads == 0 || grid[0] == 0 || grid[1] == 0 || grid[2] == 0) {
        error = "invalid configuration argument: a zero grid or block dimension";
        return 1;
    }
    if (threads > (unsigned long long)std::min<unsigned>(max_threads, kMaxThreads) ||
        block[2] > 64) {
        error = "too many resources requested for launch: block of " + std::to_string(threads) +
                " threads, the kernel allows " + std::to_string(std::min<unsigned>(max_threads, kMaxThreads));
        return 1;
    }
    if (grid[1] > 65535 || grid[2] > 65535 || grid[0] > 2147483647u) {
        error = "invalid argument: grid dimensions over CUDA's limits";
        return 1;
    }
    g.fibers.assign(threads, Fiber{});
    g.stacks_bytes = threads * kStackBytes;
    void* mem = mmap(nullptr, g.stacks_bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) {
        error = "cudasim: cannot map fiber stacks";
        return 1;
    }
    g.stacks = static_cast<char*>(mem);
    const long page = sysconf(_SC_PAGESIZE);
    for (unsigned long long i = 0; i < threads; ++i)  // a guard page under each stack
        mprotect(g.stacks + i * kStackBytes, page, PROT_NONE);
    g.body = body;
    g.body_arg = arg;
    g.error.clear();
    g.grid_dim = uint3{grid[0], grid[1], grid[2]};
    g.block_dim = uint3{block[0], block[1], block[2]};
    for (unsigned z = 0; z < grid[2] && g.error.empty(); ++z)
        for (unsigned y = 0; y < grid[1] && g.error.empty(); ++y)
            for (unsigned x = 0; x < grid[0] && g.error.empty(); ++x) {
                g.block_idx = uint3{x, y, z};
                run_block();
            }
    munmap(g.stacks, g.stacks_bytes);
    g.stacks = nullptr;
    g.fibers.clear();
    if (!g.error.empty()) {
        error = g.error;
        return 1;
    }
    return 0;
}

template <typename... P>
struct Call {
    void (*kernel)(P...);
    void** args;

    template <size_t... I>
    void run(std::index_sequence<I...>)
    {
        kernel(*reinterpret_cast<std::remove_cv_t<P>*>(args[I])...);
    }
    static void body(void* self) { static_cast<Call*>(self)->run(std::index_sequence_for<P...>{}); }
};

// Launch `kernel` as cuLaunchKernel would: args[i] points at the bytes of
// argument i, which must have the size of parameter i.
template <typename... P>
int launch(void (*kernel)(P...), const unsigned* grid, const unsigned* block, unsigned max_threads,
           void** args, int n_args, const size_t* arg_sizes, char* err, int err_len)
{
    std::string error;
    const size_t want[] = {sizeof(P)..., 0};
    if (n_args != (int)sizeof...(P)) {
        error = "the kernel takes " + std::to_string(sizeof...(P)) + " arguments, got " +
                std::to_string(n_args);
    } else {
        for (int i = 0; i < n_args && error.empty(); ++i)
            if (arg_sizes[i] != want[i])
                error = "argument " + std::to_string(i) + " has " + std::to_string(arg_sizes[i]) +
                        " bytes, the kernel parameter " + std::to_string(want[i]);
    }
    if (error.empty()) {
        Call<P...> call{kernel, args};
        run_grid(&Call<P...>::body, &call, grid, block, max_threads, error);
    }
    if (!error.empty()) {
        snprintf(err, err_len, "%s", error.c_str());
        return 1;
    }
    return 0;
}

}  // namespace cudasim
