"""python -m app.payments: charges orders, recording the values of `charge` (record_calls
values=...). One order is refused: its amount is over the limit, and the call raises."""

import time

import devtrace


class Order:
    def __init__(self, ident, customer):
        self.ident = ident
        self.customer = customer


def charge(order, amount, api_key):
    if amount > 1000:
        raise ValueError("amount over the limit")
    time.sleep(amount / 4000)  # 9 → 2.25 ms, 64 → 16 ms, 120 → 30 ms
    return {"order": order.ident, "charged": amount}


def main():
    devtrace.configure(service_name="payments")
    recorder = devtrace.record_calls("app", values=["app.payments:charge"], threshold_ms=1)
    for ident, amount in [(1, 120), (2, 9), (3, 4312), (4, 64)]:
        try:
            charge(Order(ident, f"customer-{ident}"), amount, "sk-test-0000")
        except ValueError:
            pass
    recorder.stop()


if __name__ == "__main__":
    main()
