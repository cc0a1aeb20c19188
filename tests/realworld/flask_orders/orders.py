"""The `orders` service: Flask and the SQLAlchemy ORM on PostgreSQL (psycopg2).

`GET /orders?limit=N` lists the newest N orders with their customer's name. The customer is a
lazy relationship, so the ORM loads each order's customer with its own SELECT: the N+1. Page
sizes are bucketed by tens into a fixed table of page shapes that only goes up to 29: a limit of
30 or more fails (an IndexError, a 500), before any query runs."""

from __future__ import annotations

import hashlib
import hmac
import os
import time

from flask import Flask, g, jsonify, request
from sqlalchemy import ForeignKey, create_engine, event, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from corpus import record


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    total_cents: Mapped[int]
    customer: Mapped[Customer] = relationship(lazy="select")


# Page shapes by tens of rows: (rows per column, columns). Nobody added a fourth.
PAGE_SHAPES = [(10, 1), (10, 2), (10, 3)]

engine = create_engine(os.environ["ORDERS_DATABASE_URL"], pool_size=4)
app = Flask(__name__)


@event.listens_for(engine, "before_cursor_execute")
def _started(conn, cursor, statement, parameters, context, executemany):
    conn.info["query_started"] = time.monotonic_ns()


@event.listens_for(engine, "after_cursor_execute")
def _ended(conn, cursor, statement, parameters, context, executemany):
    timings = g.get("customer_loads") if request else None
    if timings is not None and "FROM customers" in statement:
        timings.append(time.monotonic_ns() - conn.info.pop("query_started"))


@app.get("/orders")
def list_orders():
    limit = int(request.args.get("limit", "10"))
    rows_per_column, columns = PAGE_SHAPES[limit // 10]
    g.customer_loads = []
    with Session(engine) as session:
        orders = session.scalars(select(Order).order_by(Order.id.desc()).limit(limit)).all()
        page = [{"id": o.id, "customer": o.customer.name, "total": o.total_cents} for o in orders]
    record(problem="n_plus_one", limit=limit, durations=g.customer_loads)
    return jsonify({"orders": page, "layout": [rows_per_column, columns], "signature": sign(page)})


def sign(page: list) -> str:
    """A per-page signature from a key stretched for every request (PBKDF2): tens of
    milliseconds of the service's own code that no instrumentation records, so the request's
    time is mostly its own (a blind spot, and a true one) in every run, not only slow ones."""
    key = hashlib.pbkdf2_hmac("sha256", b"orders page key", b"orders", 120_000)
    return hmac.new(key, repr(page).encode(), "sha256").hexdigest()


def create_schema() -> None:
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        for i in range(1, 41):
            session.add(Customer(id=i, name=f"customer {i}"))
        session.flush()
        for i in range(1, 41):
            session.add(Order(id=i, customer_id=i, total_cents=1000 + i))
        session.commit()


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]), threaded=True)
