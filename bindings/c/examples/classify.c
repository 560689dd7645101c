/*
 * classify: runs a Kestrel model on a PyTorch reference file's input and checks the
 * result against the reference's output, through the C API.
 *
 *   classify MODEL REFERENCE
 *
 * MODEL is a model file (safetensors with a kestrel.graph); REFERENCE a file written by
 * the exporter's save_reference, holding "input" and "output". Prints the model's
 * inputs and outputs, the error of a batch-1 run and each row's argmax, then what
 * kestrel_compare says. Exits 0 when both agree with the reference, 1 otherwise or
 * when a call fails (its message on stderr), 2 on bad usage.
 *
 * Build (from the workspace root, after cargo build --release -p kestrel-c):
 *   cc -std=c11 -Wall -Wextra -pedantic -I bindings/c/include \
 *      bindings/c/examples/classify.c -L target/release -lkestrel_c -lm \
 *      -Wl,-rpath,$PWD/target/release -o classify
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "kestrel.h"

/* Reports the failed call with the library's message, which names the file, input or
 * option at fault. Returns 1, the exit status for a failure. */
static int fail(const char *call)
{
    fprintf(stderr, "classify: %s failed: %s\n", call, kestrel_last_error());
    return 1;
}

static size_t product(const size_t *dims, size_t rank)
{
    size_t n = 1;
    for (size_t i = 0; i < rank; i++) {
        n *= dims[i];
    }
    return n;
}

static void print_shape(const size_t *dims, size_t rank)
{
    printf("[");
    for (size_t i = 0; i < rank; i++) {
        printf(i == 0 ? "%zu" : ", %zu", dims[i]);
    }
    printf("]");
}

/* Reads the float tensor `name` of `path` into a new buffer: its size first, then its
 * values. Returns NULL (the error printed) on failure; the caller frees the buffer. */
static float *read_tensor(const char *path, const char *name, size_t *len)
{
    if (kestrel_read_tensor(path, name, NULL, 0, len) != KESTREL_OK) {
        fail("kestrel_read_tensor");
        return NULL;
    }
    float *data = malloc(*len * sizeof *data);
    if (data == NULL) {
        fprintf(stderr, "classify: out of memory for %zu floats\n", *len);
        return NULL;
    }
    if (kestrel_read_tensor(path, name, data, *len, len) != KESTREL_OK) {
        fail("kestrel_read_tensor");
        free(data);
        return NULL;
    }
    return data;
}

/* Prints the model's inputs and outputs with the session's shapes (batch first). */
static int describe(const KestrelModel *model, const KestrelSession *session)
{
    for (int output = 0; output <= 1; output++) {
        size_t count = output ? kestrel_model_output_count(model)
                              : kestrel_model_input_count(model);
        for (size_t i = 0; i < count; i++) {
            const char *name;
            const size_t *dims;
            size_t rank;
            KestrelStatus status = output ? kestrel_model_output_name(model, i, &name)
                                          : kestrel_model_input_name(model, i, &name);
            if (status != KESTREL_OK) {
                return fail("kestrel_model_*_name");
            }
            status = output ? kestrel_session_output_shape(session, i, &dims, &rank)
                            : kestrel_session_input_shape(session, i, &dims, &rank);
            if (status != KESTREL_OK) {
                return fail("kestrel_session_*_shape");
            }
            printf("%s %zu: %s ", output ? "output" : "input", i, name);
            print_shape(dims, rank);
            printf("\n");
        }
    }
    return 0;
}

/* Prints the largest error of `out` against `ref` and each row's argmax (a row being one
 * image of the batch); returns whether the error is within compare's fp32 tolerance. */
static int check(const float *out, const float *ref, size_t len, size_t rows)
{
    double max_abs = 0.0, max_ref = 0.0;
    for (size_t i = 0; i < len; i++) {
        max_abs = fmax(max_abs, fabs((double)out[i] - (double)ref[i]));
        max_ref = fmax(max_ref, fabs((double)ref[i]));
    }
    double tolerance = 1e-4 * max_ref + 1e-6;
    printf("run: max abs error %.3g (tolerance %.3g)\n", max_abs, tolerance);
    size_t cols = len / rows;
    int argmax_agree = 1;
    for (size_t r = 0; r < rows; r++) {
        size_t best = 0, best_ref = 0;
        for (size_t c = 1; c < cols; c++) {
            best = out[r * cols + c] > out[r * cols + best] ? c : best;
            best_ref = ref[r * cols + c] > ref[r * cols + best_ref] ? c : best_ref;
        }
        printf("row %zu: argmax %zu (reference %zu)\n", r, best, best_ref);
        argmax_agree &= best == best_ref;
    }
    return max_abs <= tolerance && argmax_agree;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: classify MODEL REFERENCE\n");
        return 2;
    }
    const char *model_path = argv[1];
    const char *reference_path = argv[2];
    int exit_code = 1;
    KestrelModel *model = NULL;
    KestrelOptions *options = NULL;
    KestrelSession *session = NULL;
    float *input = NULL, *output = NULL, *reference = NULL;

    printf("kestrel %s\n", kestrel_version());
    if (kestrel_model_load(model_path, &model) != KESTREL_OK) {
        fail("kestrel_model_load");
        goto done;
    }
    if (kestrel_model_input_count(model) != 1 || kestrel_model_output_count(model) != 1) {
        fprintf(stderr, "classify: %s: expected a model of one input and one output\n",
                model_path);
        goto done;
    }
    options = kestrel_options_new();
    if (kestrel_options_set_batch(options, 1) != KESTREL_OK ||
        kestrel_options_set_threads(options, 1) != KESTREL_OK ||
        kestrel_options_set_device(options, "cpu") != KESTREL_OK) {
        fail("kestrel_options_set_*");
        goto done;
    }
    if (kestrel_session_new(model, options, &session) != KESTREL_OK) {
        fail("kestrel_session_new");
        goto done;
    }
    if (describe(model, session) != 0) {
        goto done;
    }

    /* The session's buffers: its output shape gives the size to allocate. */
    const size_t *out_dims;
    size_t out_rank, input_len, reference_len;
    if (kestrel_session_output_shape(session, 0, &out_dims, &out_rank) != KESTREL_OK) {
        fail("kestrel_session_output_shape");
        goto done;
    }
    size_t output_len = product(out_dims, out_rank);
    output = malloc(output_len * sizeof *output);
    input = read_tensor(reference_path, "input", &input_len);
    reference = read_tensor(reference_path, "output", &reference_len);
    if (output == NULL || input == NULL || reference == NULL) {
        goto done;
    }
    /* The whole tensor goes in: a reference of another batch is the library's to
     * refuse (KESTREL_ERROR_INPUT, naming the input and both sizes). */
    const float *inputs[1] = {input};
    float *outputs[1] = {output};
    if (kestrel_session_run(session, inputs, &input_len, 1, outputs, &output_len, 1) !=
        KESTREL_OK) {
        fail("kestrel_session_run");
        goto done;
    }
    if (reference_len != output_len) {
        fprintf(stderr, "classify: %s: \"output\" holds %zu floats, the model gives %zu\n",
                reference_path, reference_len, output_len);
        goto done;
    }
    int run_ok = check(output, reference, output_len, out_dims[0]);

    int all_ok = 0;
    double worst_rel = 0.0;
    if (kestrel_compare(model, reference_path, options, &all_ok, &worst_rel) != KESTREL_OK) {
        fail("kestrel_compare");
        goto done;
    }
    printf("compare: %s (worst relative error %.3g)\n",
           all_ok ? "all outputs within tolerance" : "outputs out of tolerance", worst_rel);
    exit_code = run_ok && all_ok ? 0 : 1;
    printf("%s\n", exit_code == 0 ? "OK" : "MISMATCH");

done:
    free(reference);
    free(input);
    free(output);
    kestrel_session_free(session);
    kestrel_options_free(options);
    kestrel_model_free(model);
    return exit_code;
}
