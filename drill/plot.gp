# plot.gp: rows per server over time from a pg_autoha_drill --csv file.
#
#   gnuplot -e "csv='samples.csv'; png='samples.png'; fault=10" drill/plot.gp
#
# csv    the drill's samples: t_seconds,server,role,rows (header line first)
# png    output file (default: csv with .png appended)
# fault  second of the fault, drawn as a vertical line (omit or < 0: none)
#
# Lines join a server's answered samples (down/error samples have no rows);
# points mark the samples where it answered as primary, so a stretch without
# points on a line is a stretch where that server was not seen as primary.

if (!exists("csv")) { print "plot.gp: set csv='file.csv' with -e"; exit status 2 }
if (!exists("png")) { png = csv . ".png" }
if (!exists("fault")) { fault = -1 }

# the servers, in order of first appearance (names have no spaces or commas)
servers = system(sprintf("tail -n +2 '%s' | cut -d, -f2 | awk '!seen[$0]++'", csv))

set terminal pngcairo size 1200,600 noenhanced
set output png
set datafile separator ","
set datafile missing ""
set title "pg_autoha drill: rows of this run per server"
set xlabel "seconds since the start"
set ylabel "rows"
set key top left
set grid
if (fault >= 0) {
	set arrow 1 from fault, graph 0 to fault, graph 1 nohead lw 2 lc rgb "red" dt 2
	set label 1 "fault" at fault, graph 0.97 offset 0.5,0 tc rgb "red"
}

plot for [i=1:words(servers)] csv every ::1 \
	using 1:(strcol(2) eq word(servers, i) ? column(4) : NaN) \
	with lines lw 2 lc i title word(servers, i), \
	for [i=1:words(servers)] csv every ::1 \
	using 1:((strcol(2) eq word(servers, i) && strcol(3) eq "primary") ? column(4) : NaN) \
	with points pt 7 ps 0.4 lc i notitle
