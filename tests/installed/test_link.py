"""Modules that call each other: compile(source, link=[other]) (README "The API")."""

import gc

import pytest

import proteus

HELPERS = 'extern "C" { int counter = 0; int helper(int x) { counter++; return x + %d; } }'
USER = 'extern "C" { int helper(int); extern int counter; int use(int x) { return helper(x) * 10 + counter; } }'


def test_a_module_calls_and_shares_with_the_modules_it_links():
    helpers = proteus.compile(HELPERS % 1)
    user = proteus.compile(USER, link=[helpers])
    use = user.get_function("use")
    assert use(2) == 31  # helper(2) = 3, counter 1
    assert helpers.get_function_address("counter") and use(2) == 32  # one counter, shared
    del helpers  # the user module keeps what it links alive
    gc.collect()
    assert use(5) == 63


def test_unresolved_without_link_and_per_link_results():
    with pytest.raises(proteus.CompileError, match="helper"):
        proteus.compile(USER)  # the same source without link: helper is undefined
    plus_one, plus_two = proteus.compile(HELPERS % 1 + " // one"), proteus.compile(HELPERS % 2 + " // two")
    first = proteus.compile(USER, link=[plus_one]).get_function("use")
    second = proteus.compile(USER, link=[plus_two]).get_function("use")  # same source, other link: other code
    assert first(0) == 11 and second(0) == 21


def test_specialised_variants_of_a_linking_module_link_too():
    helpers = proteus.compile(HELPERS % 100 + " // variants")
    use = proteus.compile(USER + " // variants", link=[helpers]).get_function("use", specialize=[0])
    assert use(1) == 1011 and use(2) == 1022 and use.variants == 2


def test_link_arguments_are_checked():
    with pytest.raises(TypeError, match="link must be a list of proteus.Module objects"):
        proteus.compile(USER, link="helpers")
    with pytest.raises(TypeError, match="link must be a list of proteus.Module objects; got 3"):
        proteus.compile(USER, link=[3])
