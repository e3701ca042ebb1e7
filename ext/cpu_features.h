/* Does this CPU run code built with -march=x86-64-v3 (AVX2, FMA, BMI2...)? */
#ifndef FASTNORM_CPU_FEATURES_H
#define FASTNORM_CPU_FEATURES_H
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
static inline int fastnorm_cpu_is_x86_64_v3(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
        && __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("avx");
}
#else
static inline int fastnorm_cpu_is_x86_64_v3(void) { return 0; }
#endif
#endif
