"""App 1 of the real-instrumentation corpus: Flask, SQLAlchemy on PostgreSQL (psycopg2),
requests — see __main__.py for what it plants."""
