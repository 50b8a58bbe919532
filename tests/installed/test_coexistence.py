"""Our LLVM is linked statically and hidden: another LLVM (llvmlite) in the same process works."""

import subprocess
import sys


def test_llvmlite_and_proteus_in_one_process():
    code = """
import llvmlite.binding as llvm
llvm.initialize_native_target(); llvm.initialize_native_asmprinter()
mod = llvm.parse_assembly('define i32 @f() { ret i32 7 }'); mod.verify()
import proteus
f = proteus.compile('extern "C" int plus1(int x) { return x + 1; }').get_function('plus1', proteus.i32, [proteus.i32])
print(f(41), llvm.llvm_version_info)
mod2 = llvm.parse_assembly('define i32 @g() { ret i32 8 }'); mod2.verify()
print('ok')
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("42 ") and res.stdout.strip().endswith("ok"), res.stdout
