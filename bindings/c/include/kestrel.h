/*
 * kestrel.h: the C API of Kestrel, low-latency inference for PyTorch-trained CNNs.
 * Generated from bindings/c/src by cbindgen (bindings/c/cbindgen.toml): do not edit;
 * KESTREL_BLESS=1 cargo test --release -p kestrel-c --test header regenerates it.
 *
 * Every call that can fail returns a KestrelStatus and sets this thread's message,
 * read with kestrel_last_error(). A KestrelModel may be shared by any number of threads;
 * a KestrelSession or KestrelOptions is used by one thread at a time (it may move
 * between threads). Strings and shapes handed out belong to the object that hands them
 * out and stay valid until it is freed. Link with -lkestrel_c.
 */

#ifndef KESTREL_H
#define KESTREL_H

#include <stddef.h>

// What a call returns: `KESTREL_OK`, or the kind of failure; `kestrel_last_error()` then
// says what failed, naming the argument, file, input or output at fault.
typedef enum KestrelStatus {
  // The call succeeded.
  KESTREL_OK = 0,
  // A NULL pointer, a string that is not UTF-8, an index out of range or an unknown
  // option value.
  KESTREL_ERROR_ARGUMENT = 1,
  // A file that cannot be read, is not a valid model, or lacks a tensor asked for.
  KESTREL_ERROR_LOAD = 2,
  // An input, output or buffer whose count or size does not fit.
  KESTREL_ERROR_INPUT = 3,
  // A session option this model, machine or device cannot take.
  KESTREL_ERROR_OPTION = 4,
  // No usable GPU, driver or NVRTC, or a CUDA kernel that failed.
  KESTREL_ERROR_CUDA = 5,
  // A panic caught at the boundary (a bug in Kestrel), or any other failure.
  KESTREL_ERROR_INTERNAL = 6,
} KestrelStatus;

// A loaded model (opaque). Immutable once loaded: it may be used from several threads at
// once, each building its own sessions.
typedef struct KestrelModel KestrelModel;

// Session options (opaque): the CPU, batch 1, one thread, fp32 until set otherwise.
typedef struct KestrelOptions KestrelOptions;

// A session (opaque): a model ready to run at one batch size on one device. It may move
// between threads, but only one thread may use it at a time.
typedef struct KestrelSession KestrelSession;

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

// The message of this thread's last failed call, or "" if none has failed. Owned by the
// library; valid until this thread's next kestrel call. Success does not clear it: read
// it only after a call returned a status other than `KESTREL_OK`. Each thread has its own.
const char *kestrel_last_error(void);

// The library's version, e.g. "0.1.0": a static string, never freed.
const char *kestrel_version(void);

// Loads a model file (safetensors with a `kestrel.graph`), checking its graph and
// weights. On success `*out` is a new model, to be freed with `kestrel_model_free`; on
// failure `*out` is left as it was and the message names the file and what is wrong.
// Thread-safe: any number of threads may load models at once.
//
// # Safety
// `path` must be NULL or a NUL-terminated string; `out` NULL or writable.
enum KestrelStatus kestrel_model_load(const char *path, struct KestrelModel **out);

// Frees a model from `kestrel_model_load`. NULL is allowed and does nothing. Sessions
// built from the model do not borrow it and stay usable; the names it handed out do not.
//
// # Safety
// `model` must be NULL or a model from `kestrel_model_load` not yet freed, and no other
// thread may be using it.
void kestrel_model_free(struct KestrelModel *model);

// The number of the model's inputs; 0 (and a message) for a NULL model. This and the
// other `kestrel_model_*` queries may be called from several threads at once.
//
// # Safety
// `model` must be NULL or a live model.
size_t kestrel_model_input_count(const struct KestrelModel *model);

// The number of the model's outputs; 0 (and a message) for a NULL model.
//
// # Safety
// `model` must be NULL or a live model.
size_t kestrel_model_output_count(const struct KestrelModel *model);

// The name of input `index` (in the order `kestrel_session_run` takes the inputs). The
// string is owned by the model and valid until `kestrel_model_free`.
//
// # Safety
// `model` must be NULL or a live model; `name` NULL or writable.
enum KestrelStatus kestrel_model_input_name(const struct KestrelModel *model,
                                            size_t index,
                                            const char **name);

// The name of output `index` (in the order `kestrel_session_run` fills the outputs). The
// string is owned by the model and valid until `kestrel_model_free`.
//
// # Safety
// `model` must be NULL or a live model; `name` NULL or writable.
enum KestrelStatus kestrel_model_output_name(const struct KestrelModel *model,
                                             size_t index,
                                             const char **name);

// New options at their defaults (the CPU, batch 1, one thread, fp32); free them with
// `kestrel_options_free`. Options are copied when a session is built, so they may be
// changed or freed afterwards. Never NULL: like any Rust allocation, a failed one aborts
// the process.
struct KestrelOptions *kestrel_options_new(void);

// Frees options from `kestrel_options_new`. NULL is allowed and does nothing.
//
// # Safety
// `options` must be NULL or from `kestrel_options_new`, not yet freed.
void kestrel_options_free(struct KestrelOptions *options);

// The batch size every run of the session takes (default 1). 0 is
// `KESTREL_ERROR_OPTION`. A model whose batch is fixed fails at `kestrel_session_new`
// with any other batch.
//
// # Safety
// `options` must be NULL or live options no other thread is using.
enum KestrelStatus kestrel_options_set_batch(struct KestrelOptions *options, size_t batch);

// The threads one run may use (default 1), drawn from one process-wide pool with a
// thread per core. 0 is `KESTREL_ERROR_OPTION`.
//
// # Safety
// `options` must be NULL or live options no other thread is using.
enum KestrelStatus kestrel_options_set_threads(struct KestrelOptions *options, size_t threads);

// Where the session runs: "cpu" (default), "cuda" (GPU 0) or "cuda:N". Another string
// is `KESTREL_ERROR_ARGUMENT`; whether the GPU exists is known at `kestrel_session_new`.
//
// # Safety
// `options` must be NULL or live options no other thread is using; `device` NULL or a
// NUL-terminated string.
enum KestrelStatus kestrel_options_set_device(struct KestrelOptions *options, const char *device);

// The convolutions' arithmetic on CUDA: "fp32" (default), "tf32" or "fp16". Another
// string is `KESTREL_ERROR_ARGUMENT`; tf32 or fp16 on the CPU fails at
// `kestrel_session_new` with `KESTREL_ERROR_OPTION`.
//
// # Safety
// `options` must be NULL or live options no other thread is using; `precision` NULL or
// a NUL-terminated string.
enum KestrelStatus kestrel_options_set_precision(struct KestrelOptions *options,
                                                 const char *precision);

// Prepares a session of `model` with `options` (NULL: the defaults), which are copied.
// On success `*out` is a new session, to be freed with `kestrel_session_free`. A session
// does not borrow the model: it stays valid after `kestrel_model_free`. Building takes
// time (kernels chosen, weights packed); do it once and run many times. Several threads
// may build sessions of one model at once; each session then belongs to one thread at a
// time.
//
// # Safety
// `model` must be NULL or a live model; `options` NULL or live options not being changed
// by another thread; `out` NULL or writable.
enum KestrelStatus kestrel_session_new(const struct KestrelModel *model,
                                       const struct KestrelOptions *options,
                                       struct KestrelSession **out);

// Frees a session from `kestrel_session_new`. NULL is allowed and does nothing.
//
// # Safety
// `session` must be NULL or a session not yet freed, and no thread may be using it.
void kestrel_session_free(struct KestrelSession *session);

// The shape (batch first, NCHW for images) input `index` must have: `*rank` dimensions
// at `*dims`, owned by the session and valid until `kestrel_session_free`. The input's
// length in floats is their product.
//
// # Safety
// `session` must be NULL or a live session; `dims` and `rank` NULL or writable.
enum KestrelStatus kestrel_session_input_shape(const struct KestrelSession *session,
                                               size_t index,
                                               const size_t **dims,
                                               size_t *rank);

// The shape (batch first) of output `index` of every run, as for
// `kestrel_session_input_shape`.
//
// # Safety
// `session` must be NULL or a live session; `dims` and `rank` NULL or writable.
enum KestrelStatus kestrel_session_output_shape(const struct KestrelSession *session,
                                                size_t index,
                                                const size_t **dims,
                                                size_t *rank);

// Runs the session: `n_inputs` inputs in model order, input `i` being `input_lens[i]`
// floats at `inputs[i]`, each exactly its shape's size (`kestrel_session_input_shape`);
// then copies output `i` into `outputs[i]`, which holds exactly `output_lens[i]` floats,
// its shape's size. A wrong count or length is `KESTREL_ERROR_INPUT`, naming the input or
// output and both sizes, and writes no output buffer. Allocates nothing on success (for
// models of up to 8 inputs). Only one thread may run a session at a time; buffers must
// not overlap.
//
// # Safety
// `session` must be NULL or a live session no other thread is using. `inputs` and
// `input_lens` must be NULL or point to `n_inputs` entries, `outputs` and `output_lens`
// to `n_outputs`; each `inputs[i]` must be NULL or readable for `input_lens[i]` floats,
// each `outputs[i]` NULL or writable for `output_lens[i]` floats.
enum KestrelStatus kestrel_session_run(struct KestrelSession *session,
                                       const float *const *inputs,
                                       const size_t *input_lens,
                                       size_t n_inputs,
                                       float *const *outputs,
                                       const size_t *output_lens,
                                       size_t n_outputs);

// Reads the float tensor `tensor` of the safetensors file `path` (any float dtype,
// converted to f32), e.g. a reference file's "input" or "output". `*needed` is set to
// its element count. With `buffer` NULL, only the count is reported (`needed` must then
// not be NULL); otherwise the tensor is copied into `buffer`'s first `*needed` floats,
// and a `len` below that is `KESTREL_ERROR_INPUT` with the buffer untouched. A file that
// cannot be read, or lacks the tensor, or holds it as integers, is `KESTREL_ERROR_LOAD`.
// Thread-safe.
//
// # Safety
// `path` and `tensor` must be NULL or NUL-terminated; `buffer` NULL or writable for
// `len` floats; `needed` NULL or writable.
enum KestrelStatus kestrel_read_tensor(const char *path,
                                       const char *tensor,
                                       float *buffer,
                                       size_t len,
                                       size_t *needed);

// Runs `model` on the inputs of the PyTorch reference file `reference_path` (the batch
// taken from the file) with `options` (NULL: the defaults) and judges every output as
// `kestrel compare` does: `max|out - ref| <= rtol * max|ref| + atol`, the tolerance of the
// options' precision (fp32: rtol 1e-4, atol 1e-6). `*all_ok` is 1 when every output is
// within it, else 0; `*worst_rel` the largest `max|out - ref| / max|ref|` over outputs.
// A file without the model's inputs or outputs is `KESTREL_ERROR_LOAD`. Builds a session
// of its own; the model may be shared with other threads meanwhile.
//
// # Safety
// `model` must be NULL or a live model; `reference_path` NULL or NUL-terminated;
// `options` NULL or live options not being changed; `all_ok` and `worst_rel` NULL or
// writable.
enum KestrelStatus kestrel_compare(const struct KestrelModel *model,
                                   const char *reference_path,
                                   const struct KestrelOptions *options,
                                   int *all_ok,
                                   double *worst_rel);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* KESTREL_H */
