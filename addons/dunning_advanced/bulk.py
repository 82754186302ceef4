"""Write many rows at once: the daily run's only way to the database."""
from trytond import backend
from trytond.transaction import Transaction


def chunks(values, size=1000):
    values = list(values)
    for i in range(0, len(values), size):
        yield values[i:i + size]


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
