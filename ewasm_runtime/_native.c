/* The native host interface: the hot EEI functions and the per-call path in C.
 *
 * The pure-Python EEI (eei.py) is the specification and the reference; this file
 * does the same steps in the same order (charge, check, act) and raises the same
 * failures with the same reasons, so that both produce identical status, gas, output,
 * logs and state. tests/ewasm_runtime/test_native_eei.py runs the VM suite through both.
 *
 * Nothing here links against wasmtime: `init` receives the addresses of the few C API
 * functions it calls (from wasmtime-py's own library, through ctypes), and the sizes
 * of the few structures it lays out are checked there. The hash precompiles call
 * pycryptodome's C implementations the same way, by address.
 *
 * A host callback finds its frame in `current`, a thread-local pointer that `run` sets
 * around the call into wasm. The GIL is held throughout: wasm is entered from Python.
 * Only a state cache miss, a nested call, a create or a cold function calls Python.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* ---- wasmtime's C API, by address ---------------------------------------------- */

typedef void *(*instantiate_fn)(void *pre, void *ctx, void *instance, void **trap);
typedef bool (*export_nth_fn)(void *ctx, void *instance, size_t index, char **name, size_t *len, void *ext);
typedef void *(*call_fn)(void *ctx, void *func, void *args, size_t nargs, void **trap);
typedef void (*global_get_fn)(void *ctx, void *global, void *val);
typedef void *(*global_set_fn)(void *ctx, void *global, const void *val);
typedef uint8_t *(*memory_data_fn)(void *ctx, void *memory);
typedef size_t (*memory_size_fn)(void *ctx, void *memory);
typedef void *(*trap_new_fn)(const char *message, size_t len);
typedef void (*delete_fn)(void *);
typedef void *(*store_new_fn)(void *engine, void *data, void *finalizer);
typedef void *(*store_context_fn)(void *store);
typedef void (*store_limiter_fn)(void *store, int64_t memory, int64_t table_elements, int64_t instances,
                                 int64_t tables, int64_t memories);

static instantiate_fn w_instantiate;
static export_nth_fn w_export_nth;
static call_fn w_call;
static global_get_fn w_global_get;
static global_set_fn w_global_set;
static memory_data_fn w_memory_data;
static memory_size_fn w_memory_size;
static trap_new_fn w_trap_new;
static delete_fn w_error_delete, w_trap_delete, w_store_delete;
static store_new_fn w_store_new;
static store_context_fn w_store_context;
static store_limiter_fn w_store_limiter;

/* Layouts (checked by init against ctypes' view of wasmtime.h). */
#define INSTANCE_SIZE 16
#define EXTERN_SIZE 32
#define VAL_SIZE 32
#define PAYLOAD 8 /* offset of the handle in wasmtime_extern_t and of the value in wasmtime_val_t */
#define KIND_I32 0
#define KIND_I64 1

/* ---- pycryptodome's hash functions, by address --------------------------------- */

typedef int (*h_init_fn)(void **state);
typedef int (*h_update_fn)(void *state, const uint8_t *data, size_t len);
typedef int (*h_destroy_fn)(void *state);
typedef int (*sha_digest_fn)(const void *state, uint8_t *digest, size_t len);
typedef int (*rmd_digest_fn)(const void *state, uint8_t *digest);
typedef int (*k_init_fn)(void **state, size_t capacity, uint8_t rounds);
typedef int (*k_digest_fn)(void *state, uint8_t *digest, size_t len, uint8_t padding);

static h_init_fn sha_init, rmd_init;
static h_update_fn sha_update, rmd_update, k_absorb;
static h_destroy_fn sha_destroy, rmd_destroy, k_destroy;
static sha_digest_fn sha_digest;
static rmd_digest_fn rmd_digest;
static k_init_fn k_init;
/* OpenSSL's one-shot SHA256 (libcrypto, as Python's hashlib loaded it): several times
 * faster than pycryptodome's portable code where the CPU has SHA extensions. */
typedef unsigned char *(*sha256_oneshot_fn)(const unsigned char *data, size_t len, unsigned char *digest);
static sha256_oneshot_fn openssl_sha256;
static k_digest_fn k_digest;

/* ---- Python objects the reference uses ------------------------------------------ */

static PyObject *S_SUCCESS, *S_REVERT, *S_TRAP, *S_OUT_OF_GAS, *S_OUT_OF_RANGE;
static PyObject *E_HOST_TRAP, *E_OUT_OF_GAS, *E_SCOPE;
static PyObject *MISSING, *ZERO32, *LOG, *EMPTY;
static PyObject *s_journal, *s_storage, *s_reads, *s_wiped, *s_jlist, *s_state, *s_get_storage, *s_logs,
    *s_refund, *s_touched, *s_origin, *s_gas_price, *s_env, *s_coinbase, *s_difficulty, *s_gas_limit,
    *s_number, *s_timestamp, *s_ctx, *s_native_precompiles, *s_to_bytes, *s_little;

static PyObject *ZERO_INT, *EMPTY_STR;

static const char HALT_MESSAGE[] = "ewasm: frame ended by the host";

/* The raised exception, taken (PyErr_GetRaisedException before Python 3.12). */
static PyObject *take_exception(void) {
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (!type)
        return NULL;
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb) {
        PyException_SetTraceback(value, tb);
        Py_DECREF(tb);
    }
    Py_DECREF(type);
    return value;
#endif
}

/* Byzantium prices, as in gas.py. */
enum {
    G_BASE = 2, G_VERY_LOW = 3, G_COPY_WORD = 3, G_SLOAD = 200, G_SSTORE_SET = 20000,
    G_SSTORE_RESET = 5000, G_SSTORE_CLEAR_REFUND = 15000, G_CALL = 700, G_LOG = 375,
    G_LOG_TOPIC = 375, G_LOG_DATA = 8, MAX_CALL_DEPTH = 1024,
};

/* ---- the frame ------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    /* what the frame is (the same attributes as frame.Frame) */
    PyObject *tx, *address, *caller, *value, *data, *code, *compiled;
    int depth;
    char is_static;
    long long gas; /* while wasm runs, a metered frame's gas lives in its gas_left global */
    /* results */
    PyObject *return_data, *halt, *output, *reason, *error;
    /* wasmtime handles */
    void *ctx;
    uint8_t *base;
    size_t mem_size; /* only ever refreshed upwards: memory never shrinks */
    long long stack_index;
    char has_gas, has_stack;
    char gil_released;      /* an unmetered frame runs its wasm without the GIL */
    PyThreadState *tstate;  /* saved while it is released */
    void *pending_error, *pending_trap;
    uint8_t instance[INSTANCE_SIZE];
    uint8_t ext_memory[EXTERN_SIZE], ext_main[EXTERN_SIZE], ext_gas[EXTERN_SIZE], ext_stack[EXTERN_SIZE];
    uint8_t val[VAL_SIZE];
    uint8_t args[16];
    /* the transaction's journal, looked up on the frame's first storage access */
    PyObject *journal, *storage, *reads, *wiped, *jlist, *get_storage, *logs;
} Frame;

static _Thread_local Frame *current;

static PyObject *Frame_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    int depth = 0;
    if (!PyArg_ParseTuple(args, "i", &depth))
        return NULL;
    Frame *f = (Frame *)type->tp_alloc(type, 0);
    if (!f)
        return NULL;
    f->depth = depth;
    f->stack_index = -1;
    Py_INCREF(Py_None); f->tx = Py_None;
    return (PyObject *)f;
}

static int Frame_traverse(Frame *f, visitproc visit, void *arg) {
    Py_VISIT(f->tx); Py_VISIT(f->address); Py_VISIT(f->caller); Py_VISIT(f->value); Py_VISIT(f->data);
    Py_VISIT(f->code); Py_VISIT(f->compiled); Py_VISIT(f->return_data); Py_VISIT(f->halt);
    Py_VISIT(f->output); Py_VISIT(f->reason); Py_VISIT(f->error); Py_VISIT(f->journal);
    Py_VISIT(f->storage); Py_VISIT(f->reads); Py_VISIT(f->wiped); Py_VISIT(f->jlist);
    Py_VISIT(f->get_storage); Py_VISIT(f->logs);
    return 0;
}

static void drop_journal(Frame *f) {
    Py_CLEAR(f->journal); Py_CLEAR(f->storage); Py_CLEAR(f->reads); Py_CLEAR(f->wiped);
    Py_CLEAR(f->jlist); Py_CLEAR(f->get_storage); Py_CLEAR(f->logs);
}

static int Frame_clear(Frame *f) {
    Py_CLEAR(f->tx); Py_CLEAR(f->address); Py_CLEAR(f->caller); Py_CLEAR(f->value); Py_CLEAR(f->data);
    Py_CLEAR(f->code); Py_CLEAR(f->compiled); Py_CLEAR(f->return_data); Py_CLEAR(f->halt);
    Py_CLEAR(f->output); Py_CLEAR(f->reason); Py_CLEAR(f->error);
    drop_journal(f);
    return 0;
}

/* A failure nobody collected (frame.failure()) is freed here. */
static void drop_pending(Frame *f) {
    if (f->pending_error)
        w_error_delete(f->pending_error);
    if (f->pending_trap)
        w_trap_delete(f->pending_trap);
    f->pending_error = f->pending_trap = NULL;
}

static void Frame_dealloc(Frame *f) {
    PyObject_GC_UnTrack(f);
    drop_pending(f);
    Frame_clear(f);
    Py_TYPE(f)->tp_free((PyObject *)f);
}

static inline void set_field(PyObject **slot, PyObject *value) {
    PyObject *old = *slot;
    Py_INCREF(value);
    *slot = value;
    Py_XDECREF(old);
}

/* start(tx, address, caller, value, data, code, is_static, gas): reset for a new call. */
static PyObject *Frame_start(Frame *f, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "start takes 8 arguments");
        return NULL;
    }
    long long gas = PyLong_AsLongLong(args[7]);
    if (gas == -1 && PyErr_Occurred())
        return NULL;
    PyObject *ctx = PyObject_GetAttr(args[0], s_ctx);
    if (!ctx)
        return NULL;
    f->ctx = PyLong_AsVoidPtr(ctx);
    Py_DECREF(ctx);
    if (PyErr_Occurred())
        return NULL;
    set_field(&f->tx, args[0]);
    set_field(&f->address, args[1]);
    set_field(&f->caller, args[2]);
    set_field(&f->value, args[3]);
    set_field(&f->data, args[4]);
    set_field(&f->code, args[5]);
    int is_static = PyObject_IsTrue(args[6]);
    if (is_static < 0)
        return NULL;
    f->is_static = (char)is_static;
    f->gas = gas;
    f->has_gas = f->has_stack = 0;
    f->stack_index = -1;
    f->base = NULL;
    f->mem_size = 0;
    drop_pending(f);
    set_field(&f->return_data, EMPTY);
    set_field(&f->halt, Py_None);
    set_field(&f->output, EMPTY);
    set_field(&f->reason, EMPTY_STR);
    set_field(&f->error, Py_None);
    set_field(&f->compiled, Py_None);
    drop_journal(f);
    Py_RETURN_NONE;
}

/* ---- gas and memory ------------------------------------------------------------- */

static inline void gas_load(Frame *f) {
    if (f->has_gas) {
        w_global_get(f->ctx, f->ext_gas + PAYLOAD, f->val);
        memcpy(&f->gas, f->val + PAYLOAD, 8);
    }
}

static inline void gas_store(Frame *f) {
    if (f->has_gas) {
        f->val[0] = KIND_I64;
        memcpy(f->val + PAYLOAD, &f->gas, 8);
        void *err = w_global_set(f->ctx, f->ext_gas + PAYLOAD, f->val);
        if (err)
            w_error_delete(err);
    }
}

static inline bool charge(Frame *f, long long amount) {
    if (amount > f->gas) {
        f->gas = 0;
        return false;
    }
    f->gas -= amount;
    return true;
}

static inline long long copy_cost(uint32_t length, long long base) {
    return base + G_COPY_WORD * (((long long)length + 31) >> 5);
}

static inline bool in_memory(Frame *f, uint64_t ptr, uint64_t len) {
    uint64_t end = ptr + len;
    if (end > f->mem_size) {
        f->mem_size = w_memory_size(f->ctx, f->ext_memory + PAYLOAD);
        return end <= f->mem_size;
    }
    return true;
}

/* ---- ending a host call --------------------------------------------------------- */

static void *halt_trap(void) { return w_trap_new(HALT_MESSAGE, sizeof(HALT_MESSAGE) - 1); }

static void *halt_with(Frame *f, PyObject *status, PyObject *reason) {
    set_field(&f->halt, status);
    if (!reason) {
        PyErr_Clear();
        Py_INCREF(EMPTY_STR);
        reason = EMPTY_STR;
    }
    Py_XSETREF(f->reason, reason);
    f->gas = 0;
    return halt_trap();
}

/* A bug in the host (or memory exhausted): recorded, and raised after the frame unwinds. */
static void *internal_error(Frame *f, const char *name) {
    PyObject *exc = take_exception();
    if (!exc) {
        PyErr_SetString(PyExc_SystemError, "host function failed without an exception");
        exc = take_exception();
    }
    Py_XSETREF(f->error, exc);
    return halt_with(f, S_TRAP, PyUnicode_FromFormat("internal error in %s", name));
}

static void *out_of_gas(Frame *f, const char *name) {
    return halt_with(f, S_OUT_OF_GAS, PyUnicode_FromFormat("out of gas in %s", name));
}

#define HOST_TRAP(f, name, fmt, ...) halt_with((f), S_TRAP, PyUnicode_FromFormat("%s: " fmt, (name), __VA_ARGS__))

/* Memory accesses, with the reference's messages. Each returns a trap (or NULL). */
static void *read_fail(Frame *f, const char *name, uint64_t ptr, uint64_t len) {
    return HOST_TRAP(f, name, "read of %llu bytes at %llu is outside memory", (unsigned long long)len,
                     (unsigned long long)ptr);
}

static void *write_bytes(Frame *f, const char *name, uint32_t ptr, PyObject *data) {
    if (!PyBytes_Check(data)) {
        PyErr_Format(PyExc_TypeError, "%s: expected bytes, not %.100s", name, Py_TYPE(data)->tp_name);
        return internal_error(f, name);
    }
    Py_ssize_t len = PyBytes_GET_SIZE(data);
    if (!in_memory(f, ptr, (uint64_t)len))
        return HOST_TRAP(f, name, "write of %zd bytes at %u is outside memory", len, ptr);
    memcpy(f->base + ptr, PyBytes_AS_STRING(data), (size_t)len);
    return NULL;
}

static void *write_raw(Frame *f, const char *name, uint32_t ptr, const uint8_t *data, size_t len) {
    if (!in_memory(f, ptr, len))
        return HOST_TRAP(f, name, "write of %zu bytes at %u is outside memory", len, ptr);
    memcpy(f->base + ptr, data, len);
    return NULL;
}

/* A new bytes object with `len` bytes of memory at `ptr`, or NULL with *trap set. */
static PyObject *read_bytes(Frame *f, const char *name, uint32_t ptr, uint32_t len, void **trap) {
    if (!in_memory(f, ptr, len)) {
        *trap = read_fail(f, name, ptr, len);
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize((const char *)f->base + ptr, len);
    if (!out)
        *trap = internal_error(f, name);
    return out;
}

static void *copy_out(Frame *f, const char *name, PyObject *source, uint32_t result_ptr, uint32_t offset,
                      uint32_t length) {
    if (!PyBytes_Check(source)) {
        PyErr_Format(PyExc_TypeError, "%s: expected bytes", name);
        return internal_error(f, name);
    }
    Py_ssize_t size = PyBytes_GET_SIZE(source);
    if ((uint64_t)offset + length > (uint64_t)size)
        return HOST_TRAP(f, name, "copy of %u bytes at %u is outside the %zd-byte source", length, offset, size);
    return write_raw(f, name, result_ptr, (const uint8_t *)PyBytes_AS_STRING(source) + offset, length);
}

/* A Python int as 16 little-endian bytes: 0, 1 when it needs more than 128 bits, -1 on error. */
static int u128_le(PyObject *v, uint8_t out[16]) {
    if (!PyLong_Check(v)) {
        PyErr_SetString(PyExc_TypeError, "a value must be an int");
        return -1;
    }
    if (PyObject_RichCompareBool(v, ZERO_INT, Py_LT) == 1)
        return 1;  /* value >> 128 is -1: the reference refuses it too */
    unsigned long long low = PyLong_AsUnsignedLongLong(v);
    if (!(low == (unsigned long long)-1 && PyErr_Occurred())) {
        memcpy(out, &low, 8);
        memset(out + 8, 0, 8);
        return 0;
    }
    PyErr_Clear();
    PyObject *sixty_four = PyLong_FromLong(64);
    PyObject *high_obj = sixty_four ? PyNumber_Rshift(v, sixty_four) : NULL;
    Py_XDECREF(sixty_four);
    if (!high_obj)
        return -1;
    unsigned long long high = PyLong_AsUnsignedLongLong(high_obj);
    Py_DECREF(high_obj);
    if (high == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 1;
    }
    low = PyLong_AsUnsignedLongLongMask(v);
    memcpy(out, &low, 8);
    memcpy(out + 8, &high, 8);
    return 0;
}

static void *write_u128(Frame *f, const char *name, uint32_t ptr, PyObject *value) {
    uint8_t buf[16];
    int r = u128_le(value, buf);
    if (r < 0)
        return internal_error(f, name);
    if (r > 0)
        return HOST_TRAP(f, name, "%s", "value exceeds 128 bits");
    return write_raw(f, name, ptr, buf, 16);
}

static void *no_writes(Frame *f, const char *name, const char *what) {
    return f->is_static ? HOST_TRAP(f, name, "%s is not allowed in a static call", what) : NULL;
}

/* tx.<attr> or tx.env.<attr>, a new reference. */
static PyObject *tx_attr(Frame *f, PyObject *attr) { return PyObject_GetAttr(f->tx, attr); }

static PyObject *env_attr(Frame *f, PyObject *attr) {
    PyObject *env = PyObject_GetAttr(f->tx, s_env);
    if (!env)
        return NULL;
    PyObject *v = PyObject_GetAttr(env, attr);
    Py_DECREF(env);
    return v;
}

/* Wasm runs holding the GIL, and so do these functions. A contract looping over host
 * calls would otherwise keep every other thread (the node's event loop, RPC workers)
 * waiting until its gas ran out: 30M gas of getGasLeft takes about 0.3 s. Releasing and
 * retaking the GIL does not help (the waiting thread sees a switch and waits on), so
 * every GIL_INTERVAL calls a Python function that does nothing runs: its entry is where
 * the interpreter honours a waiting thread's request, as in any Python loop (and runs
 * signal handlers, so Ctrl-C stops a long contract). */
#define GIL_INTERVAL 256
static _Thread_local unsigned host_calls;
static PyObject *SWITCH_POINT;

/* false (with the exception set) when a signal handler raised */
static inline bool switch_point(void) {
    if (++host_calls % GIL_INTERVAL)
        return true;
    PyObject *r = PyObject_CallNoArgs(SWITCH_POINT);
    Py_XDECREF(r);
    return r != NULL;
}

/* ---- host functions ---------------------------------------------------------------
 * Signature of wasmtime's unchecked callbacks: parameter i is int64 a[2*i] (each raw
 * value is 16 bytes), a result goes to a[0]. NULL means "go on"; a trap ends the frame.
 */

typedef void *(*host_fn)(void *env, void *caller, int64_t *a, size_t n);
typedef void *(*host_body)(Frame *f, void *env, int64_t *a, size_t n);

static const char NO_FRAME[] = "ewasm: a host function was called outside a running frame";

/* Every callback enters through here: it finds the running frame (none while an
 * instance is being set up: a start function, which contracts may not have anyway, is
 * refused a host call) and, for an unmetered frame, takes the GIL back for the call. */
static inline void *with_frame(host_body body, void *env, int64_t *a, size_t n) {
    Frame *f = current;
    if (!f)
        return w_trap_new(NO_FRAME, sizeof(NO_FRAME) - 1);
    if (!f->gil_released)
        return body(f, env, a, n);
    PyEval_RestoreThread(f->tstate);
    f->gil_released = 0;
    void *trap = body(f, env, a, n);
    f->gil_released = 1;
    f->tstate = PyEval_SaveThread();
    return trap;
}

#define ARG(i) (a[2 * (i)])
#define U32(i) ((uint32_t)a[2 * (i)])
#define HOST(fname) \
    static void *hb_##fname(Frame *f, void *env, int64_t *a, size_t n); \
    static void *h_##fname(void *env, void *caller, int64_t *a, size_t n) { return with_frame(hb_##fname, env, a, n); } \
    static void *hb_##fname(Frame *f, void *env, int64_t *a, size_t n)
#define BEGIN(fname) const char *name = #fname; (void)name; gas_load(f)
#define CHARGE(amount) do { if (!charge(f, (amount))) return out_of_gas(f, name); } while (0)
#define TRY(expr) do { void *_t = (expr); if (_t) return _t; } while (0)
#define END() do { gas_store(f); if (!switch_point()) return internal_error(f, name); return NULL; } while (0)

HOST(useGas) {
    BEGIN(useGas);
    long long amount = ARG(0);
    if (amount < 0)
        return HOST_TRAP(f, name, "%s", "useGas with a negative amount");
    CHARGE(amount);
    END();
}

HOST(getGasLeft) {
    BEGIN(getGasLeft);
    CHARGE(G_BASE);
    a[0] = f->gas;
    END();
}

HOST(getAddress) { BEGIN(getAddress); CHARGE(G_BASE); TRY(write_bytes(f, name, U32(0), f->address)); END(); }
HOST(getCaller) { BEGIN(getCaller); CHARGE(G_BASE); TRY(write_bytes(f, name, U32(0), f->caller)); END(); }
HOST(getCallValue) { BEGIN(getCallValue); CHARGE(G_BASE); TRY(write_u128(f, name, U32(0), f->value)); END(); }

/* len() of call data, code or return data into a[0]; a trap only if len() fails. */
static void *length_of(Frame *f, const char *name, PyObject *b, int64_t *a) {
    Py_ssize_t len = PyBytes_Check(b) ? PyBytes_GET_SIZE(b) : PyObject_Length(b);
    if (len < 0)
        return internal_error(f, name);
    a[0] = len;
    return NULL;
}

HOST(getCallDataSize) { BEGIN(getCallDataSize); CHARGE(G_BASE); TRY(length_of(f, name, f->data, a)); END(); }
HOST(getCodeSize) { BEGIN(getCodeSize); CHARGE(G_BASE); TRY(length_of(f, name, f->code, a)); END(); }
HOST(getReturnDataSize) { BEGIN(getReturnDataSize); CHARGE(G_BASE); TRY(length_of(f, name, f->return_data, a)); END(); }

HOST(callDataCopy) {
    BEGIN(callDataCopy);
    CHARGE(copy_cost(U32(2), G_VERY_LOW));
    TRY(copy_out(f, name, f->data, U32(0), U32(1), U32(2)));
    END();
}

HOST(codeCopy) {
    BEGIN(codeCopy);
    CHARGE(copy_cost(U32(2), G_VERY_LOW));
    TRY(copy_out(f, name, f->code, U32(0), U32(1), U32(2)));
    END();
}

HOST(returnDataCopy) {
    BEGIN(returnDataCopy);
    CHARGE(copy_cost(U32(2), G_VERY_LOW));
    TRY(copy_out(f, name, f->return_data, U32(0), U32(1), U32(2)));
    END();
}

/* An address-like field of the transaction or the block, written to memory. */
static void *write_attr(Frame *f, const char *name, uint32_t ptr, PyObject *value, bool u128) {
    if (!value)
        return internal_error(f, name);
    void *t = u128 ? write_u128(f, name, ptr, value) : write_bytes(f, name, ptr, value);
    Py_DECREF(value);
    return t;
}

HOST(getTxOrigin) { BEGIN(getTxOrigin); CHARGE(G_BASE); TRY(write_attr(f, name, U32(0), tx_attr(f, s_origin), false)); END(); }
HOST(getTxGasPrice) { BEGIN(getTxGasPrice); CHARGE(G_BASE); TRY(write_attr(f, name, U32(0), tx_attr(f, s_gas_price), true)); END(); }
HOST(getBlockCoinbase) { BEGIN(getBlockCoinbase); CHARGE(G_BASE); TRY(write_attr(f, name, U32(0), env_attr(f, s_coinbase), false)); END(); }

HOST(getBlockDifficulty) {
    BEGIN(getBlockDifficulty);
    CHARGE(G_BASE);
    PyObject *difficulty = env_attr(f, s_difficulty);
    PyObject *le = difficulty ? PyObject_CallMethod(difficulty, "to_bytes", "iO", 32, s_little) : NULL;
    Py_XDECREF(difficulty);
    TRY(write_attr(f, name, U32(0), le, false));
    END();
}

static void *block_number_field(Frame *f, const char *name, PyObject *attr, int64_t *a) {
    PyObject *v = env_attr(f, attr);
    if (!v)
        return internal_error(f, name);
    unsigned long long x = PyLong_AsUnsignedLongLongMask(v);
    Py_DECREF(v);
    if (x == (unsigned long long)-1 && PyErr_Occurred())
        return internal_error(f, name);
    a[0] = (int64_t)x;
    return NULL;
}

HOST(getBlockGasLimit) { BEGIN(getBlockGasLimit); CHARGE(G_BASE); TRY(block_number_field(f, name, s_gas_limit, a)); END(); }
HOST(getBlockNumber) { BEGIN(getBlockNumber); CHARGE(G_BASE); TRY(block_number_field(f, name, s_number, a)); END(); }
HOST(getBlockTimestamp) { BEGIN(getBlockTimestamp); CHARGE(G_BASE); TRY(block_number_field(f, name, s_timestamp, a)); END(); }

/* ---- storage: the journal's own tables (journal.py's get_storage and _set) --------- */

static int load_journal(Frame *f) {
    if (f->journal)
        return 0;
    PyObject *journal = PyObject_GetAttr(f->tx, s_journal);
    if (!journal)
        return -1;
    f->journal = journal;
    f->storage = PyObject_GetAttr(journal, s_storage);
    f->reads = f->storage ? PyObject_GetAttr(journal, s_reads) : NULL;
    f->wiped = f->reads ? PyObject_GetAttr(journal, s_wiped) : NULL;
    f->jlist = f->wiped ? PyObject_GetAttr(journal, s_jlist) : NULL;
    f->logs = f->jlist ? PyObject_GetAttr(journal, s_logs) : NULL;
    PyObject *state = f->logs ? PyObject_GetAttr(journal, s_state) : NULL;
    f->get_storage = state ? PyObject_GetAttr(state, s_get_storage) : NULL;
    Py_XDECREF(state);
    if (!f->get_storage || !PyDict_Check(f->storage) || !PyDict_Check(f->reads) || !PyAnySet_Check(f->wiped)
        || !PyList_Check(f->jlist) || !PyList_Check(f->logs)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "the journal's tables are not what the native EEI expects");
        drop_journal(f);
        return -1;
    }
    return 0;
}

/* JournaledState.get_storage(f.address, key) for the key `k` = (address, key): a new reference. */
static PyObject *journal_storage(Frame *f, PyObject *k, PyObject *key) {
    PyObject *v = PyDict_GetItemWithError(f->storage, k);
    if (v) {
        Py_INCREF(v);
        return v;
    }
    if (PyErr_Occurred())
        return NULL;
    int wiped = PySet_Contains(f->wiped, f->address);
    if (wiped < 0)
        return NULL;
    if (wiped) {
        Py_INCREF(ZERO32);
        return ZERO32;
    }
    v = PyDict_GetItemWithError(f->reads, k);
    if (v) {
        Py_INCREF(v);
        return v;
    }
    if (PyErr_Occurred())
        return NULL;
    v = PyObject_CallFunctionObjArgs(f->get_storage, f->address, key, NULL);
    if (v && PyDict_SetItem(f->reads, k, v) < 0)
        Py_CLEAR(v);
    return v;
}

static inline bool is_zero32(PyObject *v) {
    return PyBytes_Check(v) && PyBytes_GET_SIZE(v) == 32 && memcmp(PyBytes_AS_STRING(v), PyBytes_AS_STRING(ZERO32), 32) == 0;
}

HOST(storageLoad) {
    BEGIN(storageLoad);
    CHARGE(G_SLOAD);
    void *trap = NULL;
    PyObject *key = read_bytes(f, name, U32(0), 32, &trap);
    if (!key)
        return trap;
    if (load_journal(f) < 0) {
        Py_DECREF(key);
        return internal_error(f, name);
    }
    PyObject *k = PyTuple_Pack(2, f->address, key);
    PyObject *value = k ? journal_storage(f, k, key) : NULL;
    Py_XDECREF(k);
    Py_DECREF(key);
    if (!value)
        return internal_error(f, name);
    trap = write_bytes(f, name, U32(1), value);
    Py_DECREF(value);
    if (trap)
        return trap;
    END();
}

HOST(storageStore) {
    BEGIN(storageStore);
    CHARGE(G_SSTORE_RESET);
    TRY(no_writes(f, name, "storageStore"));
    void *trap = NULL;
    PyObject *key = read_bytes(f, name, U32(0), 32, &trap);
    if (!key)
        return trap;
    PyObject *value = read_bytes(f, name, U32(1), 32, &trap);
    if (!value) {
        Py_DECREF(key);
        return trap;
    }
    PyObject *k = NULL, *current_value = NULL, *entry = NULL;
    if (load_journal(f) < 0 || !(k = PyTuple_Pack(2, f->address, key)) || !(current_value = journal_storage(f, k, key)))
        goto error;
    if (is_zero32(current_value)) {
        if (!is_zero32(value) && !charge(f, G_SSTORE_SET - G_SSTORE_RESET)) {
            Py_DECREF(key); Py_DECREF(value); Py_DECREF(k); Py_DECREF(current_value);
            return out_of_gas(f, name);
        }
    } else if (is_zero32(value)) {
        PyObject *refund = PyObject_GetAttr(f->journal, s_refund);
        PyObject *amount = PyLong_FromLong(G_SSTORE_CLEAR_REFUND);
        PyObject *sum = refund && amount ? PyNumber_Add(refund, amount) : NULL;
        Py_XDECREF(refund);
        Py_XDECREF(amount);
        if (!sum || PyObject_SetAttr(f->journal, s_refund, sum) < 0) {
            Py_XDECREF(sum);
            goto error;
        }
        Py_DECREF(sum);
    }
    /* journal._set(_storage, k, value): remember the old entry, then write */
    PyObject *old = PyDict_GetItemWithError(f->storage, k);
    if (!old && PyErr_Occurred())
        goto error;
    entry = PyTuple_Pack(3, f->storage, k, old ? old : MISSING);
    if (!entry || PyList_Append(f->jlist, entry) < 0 || PyDict_SetItem(f->storage, k, value) < 0)
        goto error;
    Py_DECREF(entry); Py_DECREF(key); Py_DECREF(value); Py_DECREF(k); Py_DECREF(current_value);
    END();
error:
    Py_XDECREF(entry); Py_DECREF(key); Py_DECREF(value); Py_XDECREF(k); Py_XDECREF(current_value);
    return internal_error(f, name);
}

HOST(log) {
    BEGIN(log);
    uint32_t length = U32(1), topics = U32(2);
    CHARGE(G_LOG + G_LOG_TOPIC * (long long)topics + G_LOG_DATA * (long long)length);
    TRY(no_writes(f, name, "log"));
    if (topics > 4)
        return HOST_TRAP(f, name, "%s", "log with more than 4 topics");
    void *trap = NULL;
    PyObject *topic_list = PyTuple_New(topics);
    if (!topic_list)
        return internal_error(f, name);
    for (uint32_t i = 0; i < topics; i++) {
        PyObject *topic = read_bytes(f, name, U32(3 + i), 32, &trap);
        if (!topic) {
            Py_DECREF(topic_list);
            return trap;
        }
        PyTuple_SET_ITEM(topic_list, i, topic);
    }
    PyObject *data = read_bytes(f, name, U32(0), length, &trap);
    if (!data) {
        Py_DECREF(topic_list);
        return trap;
    }
    PyObject *entry = NULL;
    if (load_journal(f) == 0)
        entry = PyObject_CallFunctionObjArgs(LOG, f->address, topic_list, data, NULL);
    Py_DECREF(topic_list);
    Py_DECREF(data);
    if (!entry || PyList_Append(f->logs, entry) < 0) {
        Py_XDECREF(entry);
        return internal_error(f, name);
    }
    Py_DECREF(entry);
    END();
}

static void *end_frame(Frame *f, const char *name, int64_t *a, PyObject *status) {
    void *trap = NULL;
    PyObject *output = read_bytes(f, name, U32(0), U32(1), &trap);
    if (!output)
        return trap;
    Py_XSETREF(f->output, output);
    set_field(&f->halt, status);
    return halt_trap();
}

HOST(finish) { BEGIN(finish); return end_frame(f, name, a, S_SUCCESS); }
HOST(revert) { BEGIN(revert); return end_frame(f, name, a, S_REVERT); }

/* ---- cold functions: the reference implementation, called from here ---------------- */

typedef struct {
    PyObject *impl;
    PyObject *name; /* impl.__name__, for the reasons */
    const char *cname;
} HostEnv;

/* The raw argument array as a Python sequence of int64 (what eei.py's impls index). */
typedef struct {
    PyObject_HEAD
    int64_t *a;
    Py_ssize_t n;
} RawArgs;

static PyObject *RawArgs_item(RawArgs *r, Py_ssize_t i) {
    if (!r->a || i < 0 || i >= r->n) {
        PyErr_SetString(PyExc_IndexError, "host argument index out of range");
        return NULL;
    }
    return PyLong_FromLongLong(r->a[i]);
}

static int RawArgs_ass_item(RawArgs *r, Py_ssize_t i, PyObject *v) {
    if (!r->a || !v || i < 0 || i >= r->n) {
        PyErr_SetString(PyExc_IndexError, "host argument index out of range");
        return -1;
    }
    unsigned long long x = PyLong_AsUnsignedLongLongMask(v);  /* ctypes' c_int64 wraps the same way */
    if (x == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    r->a[i] = (int64_t)x;
    return 0;
}

static PySequenceMethods RawArgs_seq = {.sq_item = (ssizeargfunc)RawArgs_item, .sq_ass_item = (ssizeobjargproc)RawArgs_ass_item};

static PyTypeObject RawArgsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ewasm_runtime._native.RawArgs",
    .tp_basicsize = sizeof(RawArgs),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_as_sequence = &RawArgs_seq,
    .tp_new = NULL,
};

/* Run the Python impl as eei._callback does, mapping its exceptions to the same statuses. */
static void *call_reference(Frame *f, HostEnv *env, int64_t *a, size_t nargs) {
    const char *name = env->cname;
    RawArgs *raw = PyObject_New(RawArgs, &RawArgsType);
    if (!raw)
        return internal_error(f, env->cname);
    raw->a = a;
    raw->n = (Py_ssize_t)(2 * nargs);
    PyObject *argv[2] = {(PyObject *)f, (PyObject *)raw};
    PyObject *result = PyObject_Vectorcall(env->impl, argv, 2, NULL);
    raw->a = NULL;  /* a reference kept by the impl must not outlive the call's arguments */
    Py_DECREF(raw);
    if (!result) {
        if (PyErr_ExceptionMatches(E_HOST_TRAP)) {
            PyObject *err = take_exception();
            void *t = halt_with(f, S_TRAP, PyUnicode_FromFormat("%U: %S", env->name, err));
            Py_DECREF(err);
            return t;
        }
        if (PyErr_ExceptionMatches(E_OUT_OF_GAS)) {
            PyErr_Clear();
            return halt_with(f, S_OUT_OF_GAS, PyUnicode_FromFormat("out of gas in %U", env->name));
        }
        if (PyErr_ExceptionMatches(E_SCOPE)) {
            PyObject *err = take_exception();
            void *t = halt_with(f, S_OUT_OF_RANGE, PyObject_Str(err));
            Py_DECREF(err);
            return t;
        }
        return internal_error(f, env->cname);
    }
    int ended = PyObject_IsTrue(result);
    Py_DECREF(result);
    if (ended < 0)
        return internal_error(f, env->cname);
    if (ended)
        return halt_trap();
    END();
}

HOST(cold) {
    gas_load(f);
    return call_reference(f, (HostEnv *)env, a, n);
}

/* ---- call and callStatic: the precompile fast path --------------------------------- */

enum { PC_NONE, PC_SHA256, PC_RIPEMD160, PC_IDENTITY, PC_KECCAK256 };

static int native_precompile(const uint8_t *to) {
    for (int i = 0; i < 19; i++)
        if (to[i])
            return PC_NONE;
    switch (to[19]) {
    case 2: return PC_SHA256;
    case 3: return PC_RIPEMD160;
    case 4: return PC_IDENTITY;
    case 9: return PC_KECCAK256;
    default: return PC_NONE;
    }
}

static long long precompile_gas(int which, uint32_t length) {
    long long words = ((long long)length + 31) >> 5;
    switch (which) {
    case PC_SHA256: return 60 + 12 * words;
    case PC_RIPEMD160: return 600 + 120 * words;
    case PC_IDENTITY: return 15 + 3 * words;
    default: return 30 + 6 * words;
    }
}

/* The precompile's output for `len` bytes at `data`, a new bytes object. */
static PyObject *precompile_run(int which, const uint8_t *data, size_t len) {
    uint8_t out[32];
    void *state = NULL;
    int err = 0;
    switch (which) {
    case PC_IDENTITY:
        return PyBytes_FromStringAndSize((const char *)data, (Py_ssize_t)len);
    case PC_SHA256:
        if (openssl_sha256) {
            err = openssl_sha256(data, len, out) == NULL;
            break;
        }
        err = sha_init(&state) || sha_update(state, data, len) || sha_digest(state, out, 32);
        if (state) sha_destroy(state);
        break;
    case PC_RIPEMD160:
        memset(out, 0, 12);
        err = rmd_init(&state) || rmd_update(state, data, len) || rmd_digest(state, out + 12);
        if (state) rmd_destroy(state);
        break;
    default:
        err = k_init(&state, 64, 24) || k_absorb(state, data, len) || k_digest(state, out, 32, 0x01);
        if (state) k_destroy(state);
        break;
    }
    if (err) {
        PyErr_Format(PyExc_RuntimeError, "precompile hash failed with code %d", err);
        return NULL;
    }
    return PyBytes_FromStringAndSize((const char *)out, 32);
}

/* Whether this runtime runs the built-in precompiles (a registry may, in principle, differ). */
static int tx_native_precompiles(Frame *f) {
    PyObject *v = PyObject_GetAttr(f->tx, s_native_precompiles);
    if (!v) {
        PyErr_Clear();
        return 0;
    }
    int r = PyObject_IsTrue(v);
    Py_DECREF(v);
    return r > 0;
}

/* eei._call for a call without value to a hash precompile, or -1 to take the reference. */
static void *precompile_call(Frame *f, const char *name, int64_t *a, long long gas, uint32_t to_ptr,
                             long long value_index, uint32_t data_ptr, uint32_t length, bool *taken) {
    *taken = false;
    if (gas < 0 || !in_memory(f, to_ptr, 20))
        return NULL;
    int which = native_precompile(f->base + to_ptr);
    if (which == PC_NONE)
        return NULL;
    if (value_index >= 0) {
        uint32_t value_ptr = (uint32_t)a[value_index];
        if (!in_memory(f, value_ptr, 16))
            return NULL;
        for (int i = 0; i < 16; i++)
            if (f->base[value_ptr + i])
                return NULL;
    }
    if (!tx_native_precompiles(f))
        return NULL;
    *taken = true;
    /* From here on, eei._call's steps for this case, in its order. */
    if (!in_memory(f, data_ptr, length))
        return read_fail(f, name, data_ptr, length);
    CHARGE(G_CALL);
    if (f->depth >= MAX_CALL_DEPTH) {
        set_field(&f->return_data, EMPTY);
        a[0] = 1;
        END();
    }
    long long cap = f->gas - f->gas / 64;
    if (gas > cap)
        gas = cap;
    f->gas -= gas;
    /* process_call: the precompile prices the call before it runs */
    long long cost = precompile_gas(which, length);
    if (cost > gas) {
        set_field(&f->return_data, EMPTY);  /* the frame's touch of `to` is reverted with it */
        a[0] = 1;
        END();
    }
    PyObject *output = precompile_run(which, f->base + data_ptr, length);
    if (!output)
        return internal_error(f, name);
    /* journal.transfer(caller, to, 0) touches the precompile's account */
    if (load_journal(f) < 0) {
        Py_DECREF(output);
        return internal_error(f, name);
    }
    PyObject *to = PyBytes_FromStringAndSize((const char *)f->base + to_ptr, 20);
    PyObject *touched = to ? PyObject_GetAttr(f->journal, s_touched) : NULL;
    int seen = touched ? PySet_Contains(touched, to) : -1;
    if (seen == 0) {
        PyObject *entry = PyTuple_Pack(3, touched, to, MISSING);
        if (!entry || PyList_Append(f->jlist, entry) < 0 || PySet_Add(touched, to) < 0)
            seen = -1;
        Py_XDECREF(entry);
    }
    Py_XDECREF(touched);
    Py_XDECREF(to);
    if (seen < 0) {
        Py_DECREF(output);
        return internal_error(f, name);
    }
    f->gas += gas - cost;
    Py_XSETREF(f->return_data, output);
    a[0] = 0;
    END();
}

HOST(call) {
    BEGIN(call);
    bool taken;
    void *t = precompile_call(f, name, a, ARG(0), U32(1), 4, U32(3), U32(4), &taken);
    return taken ? t : call_reference(f, (HostEnv *)env, a, n);
}

HOST(callStatic) {
    BEGIN(callStatic);
    bool taken;
    void *t = precompile_call(f, name, a, ARG(0), U32(1), -1, U32(2), U32(3), &taken);
    return taken ? t : call_reference(f, (HostEnv *)env, a, n);
}

/* ---- the table ------------------------------------------------------------------- */

typedef struct {
    const char *name;
    host_fn fn;
} HostEntry;

static const HostEntry HOT[] = {
    {"useGas", (host_fn)h_useGas}, {"getGasLeft", (host_fn)h_getGasLeft},
    {"getAddress", (host_fn)h_getAddress}, {"getCaller", (host_fn)h_getCaller},
    {"getCallValue", (host_fn)h_getCallValue}, {"getCallDataSize", (host_fn)h_getCallDataSize},
    {"callDataCopy", (host_fn)h_callDataCopy}, {"getCodeSize", (host_fn)h_getCodeSize},
    {"codeCopy", (host_fn)h_codeCopy}, {"getReturnDataSize", (host_fn)h_getReturnDataSize},
    {"returnDataCopy", (host_fn)h_returnDataCopy}, {"getTxOrigin", (host_fn)h_getTxOrigin},
    {"getTxGasPrice", (host_fn)h_getTxGasPrice}, {"getBlockCoinbase", (host_fn)h_getBlockCoinbase},
    {"getBlockDifficulty", (host_fn)h_getBlockDifficulty}, {"getBlockGasLimit", (host_fn)h_getBlockGasLimit},
    {"getBlockNumber", (host_fn)h_getBlockNumber}, {"getBlockTimestamp", (host_fn)h_getBlockTimestamp},
    {"storageLoad", (host_fn)h_storageLoad}, {"storageStore", (host_fn)h_storageStore},
    {"log", (host_fn)h_log}, {"finish", (host_fn)h_finish}, {"revert", (host_fn)h_revert},
    {"call", (host_fn)h_call}, {"callStatic", (host_fn)h_callStatic},
    {NULL, NULL},
};

/* host_function(module, name, impl) -> (callback address, env address).
 * The env (impl and name) lives as long as the process: the linker keeps its address. */
static PyObject *host_function(PyObject *self, PyObject *args) {
    const char *module, *name;
    PyObject *impl;
    if (!PyArg_ParseTuple(args, "ssO", &module, &name, &impl))
        return NULL;
    HostEnv *env = PyMem_RawMalloc(sizeof(HostEnv));
    if (!env)
        return PyErr_NoMemory();
    env->name = PyObject_GetAttrString(impl, "__name__");
    if (!env->name) {
        PyMem_RawFree(env);
        return NULL;
    }
    env->cname = PyUnicode_AsUTF8(env->name);
    if (!env->cname) {
        Py_DECREF(env->name);
        PyMem_RawFree(env);
        return NULL;
    }
    Py_INCREF(impl);
    env->impl = impl;
    host_fn fn = (host_fn)h_cold;
    if (strcmp(module, "ethereum") == 0)
        for (const HostEntry *e = HOT; e->name; e++)
            if (strcmp(e->name, name) == 0)
                fn = e->fn;
    return Py_BuildValue("(KK)", (unsigned long long)(uintptr_t)fn, (unsigned long long)(uintptr_t)env);
}

/* ---- the per-call path ------------------------------------------------------------ */

enum { RUN_DONE, RUN_ERROR, RUN_TRAP, RUN_INSTANTIATE };

static inline void set_global_i32(Frame *f, void *handle, int32_t v) {
    uint8_t val[VAL_SIZE] = {0};
    val[0] = KIND_I32;
    memcpy(val + PAYLOAD, &v, 4);
    void *err = w_global_set(f->ctx, handle, val);
    if (err)
        w_error_delete(err);
}

/* run(pre, memory_index, main_index, gas_index, stack_index, stack_start) -> kind.
 * Instantiates through the InstancePre, sets the gas (gas_index -1: not metered) and
 * the inherited stack height, and calls main. RUN_DONE: frame.halt says how it ended
 * (None: main returned). Otherwise frame.failure() holds wasmtime's error or trap. */
static PyObject *Frame_run(Frame *f, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "run takes 6 arguments");
        return NULL;
    }
    void *pre = PyLong_AsVoidPtr(args[0]);
    long long memory_index = PyLong_AsLongLong(args[1]), main_index = PyLong_AsLongLong(args[2]);
    long long gas_index = PyLong_AsLongLong(args[3]), stack_index = PyLong_AsLongLong(args[4]);
    long long stack_start = PyLong_AsLongLong(args[5]);
    if (PyErr_Occurred())
        return NULL;
    void *ctx = f->ctx;
    char *name;
    size_t name_len;
    f->pending_trap = NULL;
    Frame *parent = current;
    current = NULL;  /* no host call belongs to a frame while its instance is set up */
    void *err = w_instantiate(pre, ctx, f->instance, &f->pending_trap);
    current = parent;
    if (err || f->pending_trap) {
        f->pending_error = err;
        return PyLong_FromLong(RUN_INSTANTIATE);
    }
    w_export_nth(ctx, f->instance, (size_t)memory_index, &name, &name_len, f->ext_memory);
    w_export_nth(ctx, f->instance, (size_t)main_index, &name, &name_len, f->ext_main);
    f->base = w_memory_data(ctx, f->ext_memory + PAYLOAD);
    f->mem_size = w_memory_size(ctx, f->ext_memory + PAYLOAD);
    f->stack_index = stack_index;
    if (gas_index >= 0) {
        w_export_nth(ctx, f->instance, (size_t)gas_index, &name, &name_len, f->ext_gas);
        f->has_gas = 1;
        gas_store(f);
        if (stack_start && stack_index >= 0) {
            w_export_nth(ctx, f->instance, (size_t)stack_index, &name, &name_len, f->ext_stack);
            f->has_stack = 1;
            set_global_i32(f, f->ext_stack + PAYLOAD, (int32_t)stack_start);
        }
    }
    current = f;
    memset(f->args, 0, sizeof f->args);
    if (gas_index < 0) {
        /* Unmetered code (conformance runs) is not bounded by gas, so it runs without
         * the GIL, as the reference's ctypes call does; host calls take it back. */
        f->gil_released = 1;
        f->tstate = PyEval_SaveThread();
    }
    err = w_call(ctx, f->ext_main + PAYLOAD, f->args, 1, &f->pending_trap);
    if (f->gil_released) {
        PyEval_RestoreThread(f->tstate);
        f->gil_released = 0;
    }
    current = parent;
    if (f->halt != Py_None) { /* a host function ended the frame */
        if (err)
            w_error_delete(err);
        if (f->pending_trap)
            w_trap_delete(f->pending_trap);
        f->pending_trap = NULL;
        return PyLong_FromLong(RUN_DONE);
    }
    if (err) {
        f->pending_error = err;
        return PyLong_FromLong(RUN_ERROR);
    }
    if (f->pending_trap)
        return PyLong_FromLong(RUN_TRAP);
    gas_load(f);
    set_field(&f->halt, S_SUCCESS);
    return PyLong_FromLong(RUN_DONE);
}

/* failure() -> (error address, trap address): handed over to the caller, which frees them. */
static PyObject *Frame_failure(Frame *f, PyObject *unused) {
    PyObject *r = Py_BuildValue("(KK)", (unsigned long long)(uintptr_t)f->pending_error,
                                (unsigned long long)(uintptr_t)f->pending_trap);
    f->pending_error = f->pending_trap = NULL;
    return r;
}

static PyObject *Frame_gas_global(Frame *f, PyObject *unused) {
    if (!f->has_gas)
        return PyLong_FromLongLong(f->gas);
    w_global_get(f->ctx, f->ext_gas + PAYLOAD, f->val);
    long long g;
    memcpy(&g, f->val + PAYLOAD, 8);
    return PyLong_FromLongLong(g);
}

static PyObject *Frame_stack_height(Frame *f, PyObject *unused) {
    if (!f->has_stack) {
        if (f->stack_index < 0) /* set by run once the instance exists */
            return PyLong_FromLong(0);
        char *name;
        size_t len;
        w_export_nth(f->ctx, f->instance, (size_t)f->stack_index, &name, &len, f->ext_stack);
        f->has_stack = 1;
    }
    w_global_get(f->ctx, f->ext_stack + PAYLOAD, f->val);
    int32_t h;
    memcpy(&h, f->val + PAYLOAD, 4);
    return PyLong_FromLong(h);
}

static PyObject *Frame_get_ptr(Frame *f, void *which) {
    switch ((intptr_t)which) {
    case 0: return PyLong_FromVoidPtr(f->ctx);
    case 1: return PyLong_FromVoidPtr(f->base);
    case 2: return PyLong_FromVoidPtr(f->ext_memory + PAYLOAD);
    default: return PyLong_FromSize_t(f->mem_size);
    }
}

static int Frame_set_mem_size(Frame *f, PyObject *v, void *unused) {
    size_t size = v ? PyLong_AsSize_t(v) : 0;
    if (!v || (size == (size_t)-1 && PyErr_Occurred())) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_AttributeError, "mem_size cannot be deleted");
        return -1;
    }
    f->mem_size = size;
    return 0;
}

static PyMethodDef Frame_methods[] = {
    {"start", (PyCFunction)(void (*)(void))Frame_start, METH_FASTCALL, "Reset the frame for a new call."},
    {"run", (PyCFunction)(void (*)(void))Frame_run, METH_FASTCALL, "Instantiate and call main."},
    {"failure", (PyCFunction)Frame_failure, METH_NOARGS, "The pending (error, trap) addresses."},
    {"gas_global", (PyCFunction)Frame_gas_global, METH_NOARGS, "The gas as wasm sees it."},
    {"stack_height", (PyCFunction)Frame_stack_height, METH_NOARGS, "The instance's stack_height (0 without)."},
    {NULL},
};

#define OBJ(field) {#field, T_OBJECT, offsetof(Frame, field), 0, NULL}
static PyMemberDef Frame_members[] = {
    OBJ(tx), OBJ(address), OBJ(caller), OBJ(value), OBJ(data), OBJ(code), OBJ(compiled),
    OBJ(return_data), OBJ(halt), OBJ(output), OBJ(reason), OBJ(error),
    {"depth", T_INT, offsetof(Frame, depth), READONLY, NULL},
    {"is_static", T_BOOL, offsetof(Frame, is_static), 0, NULL},
    {"gas", T_LONGLONG, offsetof(Frame, gas), 0, NULL},
    {NULL},
};

static PyGetSetDef Frame_getset[] = {
    {"ctx", (getter)Frame_get_ptr, NULL, "the store context", (void *)0},
    {"base", (getter)Frame_get_ptr, NULL, "linear memory's address", (void *)1},
    {"mem_addr", (getter)Frame_get_ptr, NULL, "the memory handle's address", (void *)2},
    {"mem_size", (getter)Frame_get_ptr, (setter)Frame_set_mem_size, "known memory size", (void *)3},
    {NULL},
};

static PyTypeObject FrameType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ewasm_runtime._native.Frame",
    .tp_doc = "A call frame whose host calls run in native code (the fields of frame.Frame).",
    .tp_basicsize = sizeof(Frame),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = Frame_new,
    .tp_dealloc = (destructor)Frame_dealloc,
    .tp_traverse = (traverseproc)Frame_traverse,
    .tp_clear = (inquiry)Frame_clear,
    .tp_methods = Frame_methods,
    .tp_members = Frame_members,
    .tp_getset = Frame_getset,
};

/* ---- init ------------------------------------------------------------------------- */

static int address_of(PyObject *table, const char *key, void **out) {
    PyObject *v = PyDict_GetItemString(table, key);
    if (!v) {
        PyErr_Format(PyExc_KeyError, "native EEI: no address for %s", key);
        return -1;
    }
    *out = PyLong_AsVoidPtr(v);
    return PyErr_Occurred() ? -1 : 0;
}

static int object_of(PyObject *table, const char *key, PyObject **out) {
    PyObject *v = PyDict_GetItemString(table, key);
    if (!v) {
        PyErr_Format(PyExc_KeyError, "native EEI: no object for %s", key);
        return -1;
    }
    Py_INCREF(v);
    Py_XSETREF(*out, v);
    return 0;
}

/* init(addresses, objects, layout): bind the C functions and objects this file uses. */
static PyObject *init(PyObject *self, PyObject *args) {
    PyObject *addr, *obj, *layout;
    if (!PyArg_ParseTuple(args, "O!O!O!", &PyDict_Type, &addr, &PyDict_Type, &obj, &PyDict_Type, &layout))
        return NULL;
    const struct { const char *key; long expected; } sizes[] = {
        {"instance", INSTANCE_SIZE}, {"extern", EXTERN_SIZE}, {"val", VAL_SIZE},
        {"extern_payload", PAYLOAD}, {"val_payload", PAYLOAD}, {"val_raw", 16}, {NULL, 0}};
    for (int i = 0; sizes[i].key; i++) {
        PyObject *v = PyDict_GetItemString(layout, sizes[i].key);
        if (!v || PyLong_AsLong(v) != sizes[i].expected) {
            PyErr_Format(PyExc_ImportError, "native EEI: wasmtime's %s layout is not the expected %ld bytes",
                         sizes[i].key, sizes[i].expected);
            return NULL;
        }
    }
    void *p;
#define BIND(var, key) if (address_of(addr, key, &p) < 0) return NULL; *(void **)&var = p
    BIND(w_instantiate, "wasmtime_instance_pre_instantiate");
    BIND(w_export_nth, "wasmtime_instance_export_nth");
    BIND(w_call, "wasmtime_func_call_unchecked");
    BIND(w_global_get, "wasmtime_global_get");
    BIND(w_global_set, "wasmtime_global_set");
    BIND(w_memory_data, "wasmtime_memory_data");
    BIND(w_memory_size, "wasmtime_memory_data_size");
    BIND(w_trap_new, "wasmtime_trap_new");
    BIND(w_error_delete, "wasmtime_error_delete");
    BIND(w_trap_delete, "wasm_trap_delete");
    BIND(w_store_new, "wasmtime_store_new");
    BIND(w_store_context, "wasmtime_store_context");
    BIND(w_store_limiter, "wasmtime_store_limiter");
    BIND(w_store_delete, "wasmtime_store_delete");
    BIND(sha_init, "SHA256_init"); BIND(sha_update, "SHA256_update"); BIND(sha_digest, "SHA256_digest");
    BIND(sha_destroy, "SHA256_destroy");
    BIND(rmd_init, "ripemd160_init"); BIND(rmd_update, "ripemd160_update"); BIND(rmd_digest, "ripemd160_digest");
    BIND(rmd_destroy, "ripemd160_destroy");
    BIND(k_init, "keccak_init"); BIND(k_absorb, "keccak_absorb"); BIND(k_digest, "keccak_digest");
    BIND(k_destroy, "keccak_destroy");
#undef BIND
    PyObject *oneshot = PyDict_GetItemString(addr, "SHA256");  /* optional */
    openssl_sha256 = oneshot && oneshot != Py_None ? (sha256_oneshot_fn)PyLong_AsVoidPtr(oneshot) : NULL;
    if (PyErr_Occurred())
        return NULL;
    if (object_of(obj, "SUCCESS", &S_SUCCESS) || object_of(obj, "REVERT", &S_REVERT) || object_of(obj, "TRAP", &S_TRAP)
        || object_of(obj, "OUT_OF_GAS", &S_OUT_OF_GAS) || object_of(obj, "OUT_OF_RANGE", &S_OUT_OF_RANGE)
        || object_of(obj, "HostTrap", &E_HOST_TRAP) || object_of(obj, "OutOfGas", &E_OUT_OF_GAS)
        || object_of(obj, "ScopeViolation", &E_SCOPE) || object_of(obj, "MISSING", &MISSING)
        || object_of(obj, "ZERO32", &ZERO32) || object_of(obj, "Log", &LOG)
        || object_of(obj, "switch_point", &SWITCH_POINT))
        return NULL;
    Py_RETURN_NONE;
}

/* open_store(engine, instances) -> (store, context): a transaction's store, limited to
 * `instances` instances and memories (interpreter.open_store, in one call). */
static PyObject *open_store(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "open_store takes 2 arguments");
        return NULL;
    }
    void *engine = PyLong_AsVoidPtr(args[0]);
    long long instances = PyLong_AsLongLong(args[1]);
    if (PyErr_Occurred())
        return NULL;
    void *store = w_store_new(engine, NULL, NULL);
    if (!store)
        return PyErr_NoMemory();
    w_store_limiter(store, -1, -1, instances, -1, instances);
    PyObject *pair = PyTuple_New(2);
    if (!pair) {
        w_store_delete(store);
        return NULL;
    }
    PyObject *s = PyLong_FromVoidPtr(store), *c = PyLong_FromVoidPtr(w_store_context(store));
    if (!s || !c) {
        Py_XDECREF(s);
        Py_XDECREF(c);
        Py_DECREF(pair);
        w_store_delete(store);
        return NULL;
    }
    PyTuple_SET_ITEM(pair, 0, s);
    PyTuple_SET_ITEM(pair, 1, c);
    return pair;
}

static PyObject *close_store(PyObject *self, PyObject *store) {
    void *p = PyLong_AsVoidPtr(store);
    if (PyErr_Occurred())
        return NULL;
    if (p)
        w_store_delete(p);
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"open_store", (PyCFunction)(void (*)(void))open_store, METH_FASTCALL, "A transaction's store and context."},
    {"close_store", close_store, METH_O, "Drop a store and every instance in it."},
    {"init", init, METH_VARARGS, "Bind wasmtime's and pycryptodome's C functions and the reference's objects."},
    {"host_function", host_function, METH_VARARGS, "(callback, env) addresses for one import."},
    {NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "ewasm_runtime._native",
    "The hot EEI functions and the per-call path in C (see native.py).", -1, module_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native(void) {
    if (PyType_Ready(&FrameType) < 0 || PyType_Ready(&RawArgsType) < 0)
        return NULL;
    EMPTY = PyBytes_FromStringAndSize(NULL, 0);
    EMPTY_STR = PyUnicode_New(0, 0);
    ZERO_INT = PyLong_FromLong(0);
#define INTERN(var, text) if (!(var = PyUnicode_InternFromString(text))) return NULL
    INTERN(s_journal, "journal"); INTERN(s_storage, "_storage"); INTERN(s_reads, "_reads");
    INTERN(s_wiped, "_wiped"); INTERN(s_jlist, "_journal"); INTERN(s_state, "state");
    INTERN(s_get_storage, "get_storage"); INTERN(s_logs, "logs"); INTERN(s_refund, "refund");
    INTERN(s_touched, "touched"); INTERN(s_origin, "origin"); INTERN(s_gas_price, "gas_price");
    INTERN(s_env, "env"); INTERN(s_coinbase, "coinbase"); INTERN(s_difficulty, "difficulty");
    INTERN(s_gas_limit, "gas_limit"); INTERN(s_number, "number"); INTERN(s_timestamp, "timestamp");
    INTERN(s_ctx, "ctx"); INTERN(s_native_precompiles, "native_precompiles"); INTERN(s_to_bytes, "to_bytes");
    INTERN(s_little, "little");
#undef INTERN
    PyObject *m = PyModule_Create(&native_module);
    if (!m)
        return NULL;
    Py_INCREF(&FrameType);
    if (PyModule_AddObject(m, "Frame", (PyObject *)&FrameType) < 0)
        return NULL;
    PyModule_AddIntConstant(m, "RUN_DONE", RUN_DONE);
    PyModule_AddIntConstant(m, "RUN_ERROR", RUN_ERROR);
    PyModule_AddIntConstant(m, "RUN_TRAP", RUN_TRAP);
    PyModule_AddIntConstant(m, "RUN_INSTANTIATE", RUN_INSTANTIATE);
    return m;
}
