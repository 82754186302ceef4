from trytond.pool import PoolMeta


class Cron(metaclass=PoolMeta):
    __name__ = 'ir.cron'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.method.selection.extend([
                ('account.dunning.run|run_daily', "Run Dunning"),
                ('account.dunning.message|send_pending',
                    "Send Dunning Messages"),
                ])
