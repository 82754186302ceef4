"""Write many rows at once: the daily run's only way to the database."""
from sql.operators import Any

from trytond import backend
from trytond.transaction import Transaction


def chunks(values, size=None):
    """Slices of values small enough for one statement: SQLite limits the
    parameters of a statement, PostgreSQL takes a list as one array."""
    size = size or (100_000 if backend.name == 'postgresql' else 1000)
    values = list(values)
    for i in range(0, len(values), size):
        yield values[i:i + size]


def in_(column, values):
    """column IN values.

    PostgreSQL gets the values as one array parameter: psycopg takes longer
    to parse a statement with thousands of placeholders than PostgreSQL
    takes to run it.
    """
    if backend.name == 'postgresql':
        return column == Any(list(values))
    return column.in_(list(values))


def insert(table, columns, rows):
    """Insert rows of plain values.

    PostgreSQL gets them through COPY: a multi-row INSERT spends more time
    having its parameters parsed than written.
    """
    cursor = Transaction().connection.cursor()
    if backend.name == 'postgresql':
        names = ', '.join(f'"{c.name}"' for c in columns)
        with cursor.copy(
                f'COPY "{table._name}" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)
    else:
        for sub in chunks(rows):
            cursor.execute(*table.insert(columns, sub))
