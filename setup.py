"""The native host interface (ewasm_runtime/_native.c) is built at install when a C
compiler and the Python headers are there. It is optional: without them the install
still succeeds, and the runtime uses the pure-Python EEI with one warning line."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "ewasm_runtime._native",
            ["ewasm_runtime/_native.c"],
            extra_compile_args=["-O2", "-std=c11"],
            optional=True,
        ),
    ],
)
