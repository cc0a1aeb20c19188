"""What the recording tests' programs compute, counted: the calls fib(n) makes."""


def fib_calls(n):
    """How many calls fib(n) makes: 2·F(n+1) − 1."""
    a, b = 0, 1
    for _ in range(n + 1):
        a, b = b, a + b
    return 2 * a - 1
