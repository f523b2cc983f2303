"""The province's dashboard and its reports: figures per period, plan targets, report files built by workers."""
