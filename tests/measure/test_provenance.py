"""Provenance names the machine: the CPU by name and the instruction sets its kernels pick."""
import builtins
import io

import importlib

provenance = importlib.import_module("workbench.measure.provenance")  # the module (the package exports a function of that name)


def test_machine_names_the_cpu_and_its_kernel_instruction_sets(monkeypatch):
    text = ("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n"
            "flags\t\t: fpu sse avx2 avx512f avx512_vnni amx_tile amx_int8 other\n")
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda path, *a, **k: io.StringIO(text) if path == "/proc/cpuinfo"
                        else real_open(path, *a, **k))
    m = provenance.machine()
    assert m["cpu"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert m["cpu_flags"] == ["avx2", "avx512f", "avx512_vnni", "amx_tile", "amx_int8"]  # in CPU_FLAGS' order
    assert m["cpus"] >= 1 and m["torch_threads"] >= 1


def test_without_proc_cpuinfo_the_platform_names_it(monkeypatch):
    def no_file(path, *a, **k):
        raise OSError(path)

    monkeypatch.setattr(builtins, "open", no_file)
    got = provenance.cpu()
    assert got["cpu"] and got["cpu_flags"] == []
