# plot.gp: rows per server over time from a pg_autoha_drill --csv file.
#
#   gnuplot -e "csv='samples.csv'; png='samples.png'; fault=10" drill/plot.gp
#
# csv    the drill's samples: t_seconds,server,role,rows (header line first)
# png    output file (default: csv with .png appended)
# fault  second of the fault, drawn as a vertical line (omit or < 0: none)
#
# Lines join a server's answered samples and break where it did not answer;
# servers that hold the same rows overlap, so each line is thinner than the
# one before it and all stay visible;
# a wide band of dots marks the samples where it answered as a writable
# primary, crosses those where it was a primary that pg_autoha fenced
# (refusing every write); a bare line is a replica.

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
	set label 1 "fault" at fault, graph 0.03 offset 0.5,0 tc rgb "red"
}

# one server's samples (role filter: "" for all answered ones), for plotting;
# plotting the whole file with NaN for the other servers would break every
# line, since the servers' samples interleave.  A sample without rows (down,
# error) becomes a blank line, where gnuplot breaks the line.
rows(server, role) = sprintf("< awk -F, 'NR > 1 && $2 == \"%s\" { if ($4 == \"\") { if (!gap) print \"\"; gap = 1 } else if (\"%s\" == \"\" || $3 == \"%s\") { print; gap = 0 } }' '%s'", server, role, role, csv)

# (no fenced samples: no such series, and no warning about an empty one)
has_fenced = int(system(sprintf("grep -c ',fenced,' '%s' || true", csv))) > 0

# marks first, lines over them: a primary's samples show as a wide band
plot for [i=1:words(servers)] rows(word(servers, i), "primary") \
	using 1:4 with points pt 7 ps 1.2 lc i notitle, \
	for [i=1:(has_fenced ? words(servers) : 0)] rows(word(servers, i), "fenced") \
	using 1:4 with points pt 2 ps 1.2 lc i notitle, \
	for [i=1:words(servers)] rows(word(servers, i), "") \
	using 1:4 with lines lw 2 * (words(servers) - i + 1) lc i title word(servers, i)
