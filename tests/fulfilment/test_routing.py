"""Route planning: the data model, the independent checker, the solvers, Solomon files, the CLI.

Solver runs are capped by iterations (with a generous time backstop), so their results depend
on the seed, not on how fast the machine is.
"""

from __future__ import annotations

import itertools
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dropline.adapters.routing import NearestNeighbourSolver, PyVRPSolver, RouteSolver
from dropline.cli import app as cli_app
from dropline.fulfilment.solomon import (
    InstanceFormatError,
    dimacs_cost,
    read_best_known,
    read_solomon,
)
from dropline.fulfilment.vrp import (
    NO_LIMIT,
    Depot,
    Fleet,
    RoutingProblem,
    Stop,
    build_geographic_problem,
    build_planar_problem,
    plan_routes_from_sequences,
    schedule_route,
)

from .feasibility import check_plan, check_routes

DATA = Path(__file__).resolve().parents[1] / "data" / "vrptw"
SOLOMON = ["C101", "R101", "RC101"]


def make_line_problem(
    *, capacity: int = 9, count: int = 2, shift_end: int = 200
) -> RoutingProblem:
    """Depot at 0 and stops A, B, C at 10, 20, 30 on a line; B opens late, at 40."""
    positions = [0, 10, 20, 30]
    matrix = np.array([[abs(a - b) for b in positions] for a in positions])
    return RoutingProblem(
        depot=Depot(x=0, y=0),
        stops=(
            Stop("A", x=10, y=0, demand=4, earliest=0, latest=100, service=5),
            Stop("B", x=20, y=0, demand=3, earliest=40, latest=60, service=5),
            Stop("C", x=30, y=0, demand=2, earliest=0, latest=200, service=0),
        ),
        fleet=Fleet(count=count, capacity=capacity, shift_start=0, shift_end=shift_end),
        distance=matrix,
        duration=matrix,
    )


def make_small_problem() -> RoutingProblem:
    """Six stops around a depot; capacity forces two routes and windows shape them."""
    depot = Depot(x=0, y=0, earliest=0, latest=400)
    stops = [
        Stop(1, x=10, y=0, demand=3, earliest=0, latest=60, service=5),
        Stop(2, x=20, y=5, demand=3, earliest=20, latest=120, service=5),
        # Closes at 25: without this window the optimum would cost 141, not 143.
        Stop(3, x=5, y=20, demand=2, earliest=0, latest=25, service=5),
        Stop(4, x=-10, y=15, demand=4, earliest=50, latest=150, service=5),
        Stop(5, x=-15, y=-5, demand=2, earliest=0, latest=400, service=5),
        Stop(6, x=0, y=-20, demand=3, earliest=100, latest=250, service=5),
    ]
    return build_planar_problem(depot, stops, Fleet(count=2, capacity=10), scale=1)


def brute_force_optimum(problem: RoutingProblem) -> int:
    """Cheapest feasible plan with at most two routes, by trying every split and order
    (two vehicles, so nothing is missed)."""
    ids = [stop.id for stop in problem.stops]
    best = None
    for order in itertools.permutations(ids):
        for cut in range(len(ids) + 1):
            routes = [list(order[:cut]), list(order[cut:])]
            report = check_routes(problem, routes)
            if report.feasible and (best is None or report.cost < best):
                best = report.cost
    assert best is not None
    return best


# --- the data model ------------------------------------------------------------------------


def test_planar_problem_truncates_arcs_and_scales_times_by_ten() -> None:
    problem = build_planar_problem(
        Depot(x=0, y=0, earliest=0, latest=100),
        [Stop(1, x=3, y=4, demand=1, earliest=5, latest=9, service=2),
         Stop(2, x=1, y=1, demand=1)],
        Fleet(count=1, capacity=5, shift_start=0, shift_end=100),
        scale=10,
    )

    assert problem.distance.tolist() == [[0, 50, 14], [50, 0, 36], [14, 36, 0]]
    assert problem.duration.tolist() == problem.distance.tolist()
    assert problem.stops[0] == Stop(1, x=3, y=4, demand=1, earliest=50, latest=90, service=20)
    assert problem.stops[1].latest == NO_LIMIT  # "no limit" is not multiplied
    assert (problem.depot.latest, problem.fleet.shift_end, problem.scale) == (1000, 1000, 10)


def test_geographic_problem_uses_metres_and_rounds_seconds_up() -> None:
    # One degree of latitude on the mean-radius sphere is 111,195.08 m.
    problem = build_geographic_problem(
        Depot(x=0.0, y=0.0),
        [Stop("north", x=0.0, y=1.0)],
        Fleet(count=1, capacity=1),
        speed_kmh=36.0,
        detour_factor=1.0,
    )

    assert problem.distance.tolist() == [[0, 111195], [111195, 0]]
    assert problem.duration.tolist() == [[0, 11120], [11120, 0]]


def test_problem_refuses_a_matrix_of_the_wrong_size() -> None:
    line = make_line_problem()

    with pytest.raises(ValueError, match="distance matrix is \\(3, 3\\), expected \\(4, 4\\)"):
        RoutingProblem(line.depot, line.stops, line.fleet, np.zeros((3, 3)), line.duration)


def test_problem_refuses_duplicate_stop_ids() -> None:
    line = make_line_problem()

    with pytest.raises(ValueError, match="stop ids must be unique"):
        RoutingProblem(line.depot, (line.stops[0],) * 3 + (line.stops[1],), line.fleet,
                       np.zeros((5, 5)), np.zeros((5, 5)))


def test_problem_matrices_cannot_be_changed_after_construction() -> None:
    problem = make_line_problem()

    with pytest.raises(ValueError, match="read-only"):
        problem.distance[0, 1] = 99


def test_schedule_leaves_late_enough_to_skip_the_wait_at_a_late_opening_stop() -> None:
    # Leaving at 0 would reach B at 25 and wait until it opens at 40.
    route = schedule_route(make_line_problem(), ["A", "B", "C"])

    assert route.departure == 15
    assert route.etas == (25, 40, 55)
    assert (route.return_time, route.duration) == (85, 70)
    assert (route.load, route.distance, route.violations) == (9, 60, ())


def test_schedule_reports_lateness_and_leaves_at_shift_start() -> None:
    route = schedule_route(make_line_problem(), ["C", "A", "B"])

    assert route.departure == 0
    assert route.etas == (30, 50, 65)
    assert route.violations == ("stop 'B' served at 65, after 60",)


def test_plan_lists_stops_in_no_route_as_unassigned_and_is_not_feasible() -> None:
    plan = plan_routes_from_sequences(make_line_problem(), [["A", "B"]])

    assert plan.unassigned == ("C",)
    assert plan.violations == ()
    assert plan.feasible is False


def test_plan_cost_charges_distance_duration_and_each_route() -> None:
    base = make_line_problem()
    fleet = replace(base.fleet, cost_per_distance=2, cost_per_duration=1, cost_per_route=100)
    problem = replace(base, fleet=fleet)

    plan = plan_routes_from_sequences(problem, [["A", "B", "C"]])

    assert (plan.distance, plan.duration, plan.cost) == (60, 70, 2 * 60 + 70 + 100)
    assert check_plan(problem, plan).violations == []


# --- the independent checker catches what it should ------------------------------------------


def test_checker_accepts_a_route_that_waits_for_a_window_to_open() -> None:
    report = check_routes(make_line_problem(), [["A", "B", "C"]])

    assert report.violations == []
    assert (report.distance, report.duration, report.cost) == (60, 70, 60)


def test_checker_catches_a_route_over_capacity() -> None:
    report = check_routes(make_line_problem(capacity=8), [["A", "B", "C"]])

    assert report.violations == ["route 1: load 9 over capacity 8"]


def test_checker_catches_service_after_the_window_closes() -> None:
    report = check_routes(make_line_problem(), [["C", "A", "B"]])

    assert report.violations == ["route 1: stop 'B' starts at 65, window closes 60"]


def test_checker_catches_a_missed_stop() -> None:
    report = check_routes(make_line_problem(), [["A", "B"]])

    assert report.violations == ["stop 'C' is neither visited nor unassigned"]


def test_checker_accepts_a_stop_reported_unassigned_but_not_as_feasible() -> None:
    report = check_routes(make_line_problem(), [["A", "B"]], unassigned=["C"])

    assert report.violations == []
    assert report.unassigned == ["C"]
    assert report.feasible is False


def test_checker_catches_a_stop_visited_twice() -> None:
    report = check_routes(make_line_problem(), [["A", "B", "C"], ["A"]])

    assert report.violations == ["stop 'A' visited 2 times"]


def test_checker_catches_a_stop_both_visited_and_unassigned() -> None:
    report = check_routes(make_line_problem(), [["A", "B", "C"]], unassigned=["B"])

    assert report.violations == ["stop 'B' is unassigned but visited"]


def test_checker_catches_a_return_after_the_shift_ends() -> None:
    report = check_routes(make_line_problem(shift_end=80), [["A", "B", "C"]])

    assert report.violations == ["route 1: back at 85, due by 80"]


def test_checker_catches_more_routes_than_vehicles() -> None:
    report = check_routes(make_line_problem(count=2), [["A"], ["B"], ["C"]])

    assert report.violations == ["3 routes but 2 vehicles"]


def test_checker_catches_an_unknown_stop() -> None:
    report = check_routes(make_line_problem(), [["A", "B", "C", "Z"]])

    assert report.violations == ["unknown stop 'Z'"]


def test_checker_catches_a_plan_whose_claims_do_not_add_up() -> None:
    problem = make_line_problem()
    honest = plan_routes_from_sequences(problem, [["A", "B", "C"]])
    route = honest.routes[0]
    short = replace(route, load=8, etas=(25, 40, 52))
    late = replace(route, etas=(25, 61, 76), return_time=106)

    assert check_plan(problem, honest).violations == []
    assert check_plan(problem, replace(honest, distance=59, routes=(short,))).violations == [
        "plan claims distance 59, recomputed 60",
        "route 1: claims load 8, recomputed 9",
        "route 1: ETA 52 at 'C' is unreachable",
    ]
    assert check_plan(problem, replace(honest, routes=(late,))).violations == [
        "route 1: ETA 61 at 'B' outside its window",
    ]


# --- solvers ----------------------------------------------------------------------------------


def test_pyvrp_finds_the_brute_force_optimum_of_a_small_problem() -> None:
    problem = make_small_problem()
    solver: RouteSolver = PyVRPSolver(max_iterations=300)

    plan = solver.solve(problem, max_seconds=5, seed=1)

    report = check_plan(problem, plan)
    assert report.violations == []
    assert plan.feasible is True
    assert plan.cost == brute_force_optimum(problem) == 143


def test_pyvrp_plans_a_city_window_in_metres_and_seconds() -> None:
    # A morning window (08:00-12:00, in seconds since midnight) around a hub in Lisbon.
    hub = Depot(x=-9.1393, y=38.7223, earliest=8 * 3600, latest=12 * 3600)
    stops = [
        Stop("o1", x=-9.1500, y=38.7300, demand=1, earliest=8 * 3600, latest=9 * 3600,
             service=300),
        Stop("o2", x=-9.1250, y=38.7150, demand=2, service=300),
        Stop("o3", x=-9.1600, y=38.7100, demand=1, earliest=10 * 3600, latest=11 * 3600,
             service=300),
        Stop("o4", x=-9.1300, y=38.7400, demand=3, service=300),
    ]
    problem = build_geographic_problem(hub, stops, Fleet(count=2, capacity=5), speed_kmh=20)

    plan = PyVRPSolver(max_iterations=200).solve(problem, max_seconds=5)

    assert check_plan(problem, plan).violations == []
    assert plan.feasible is True
    etas = {stop_id: eta for r in plan.routes for stop_id, eta in zip(r.stops, r.etas)}
    assert 8 * 3600 <= etas["o1"] <= 9 * 3600
    assert 10 * 3600 <= etas["o3"] <= 11 * 3600


def test_pyvrp_with_the_same_seed_and_iteration_cap_gives_the_same_plan() -> None:
    problem = read_solomon(DATA / "R101.txt")
    solver = PyVRPSolver(max_iterations=100)

    first = solver.solve(problem, max_seconds=5, seed=7)
    second = solver.solve(problem, max_seconds=5, seed=7)

    assert first.sequences == second.sequences


def test_pyvrp_sets_aside_stops_no_vehicle_can_serve_and_plans_the_rest() -> None:
    base = make_small_problem()
    too_heavy = Stop("heavy", x=1, y=1, demand=11)
    unreachable = Stop("far", x=300, y=0, earliest=0, latest=100)  # 300 away, closes at 100
    problem = build_planar_problem(
        base.depot, [*base.stops, too_heavy, unreachable], base.fleet, scale=1
    )

    plan = PyVRPSolver(max_iterations=200).solve(problem, max_seconds=5)

    assert plan.unassigned == ("heavy", "far")
    assert plan.feasible is False
    report = check_plan(problem, plan)
    assert report.violations == []
    assert report.unassigned == ["heavy", "far"]


def test_pyvrp_with_no_vehicles_leaves_every_stop_unassigned() -> None:
    base = make_small_problem()
    problem = replace(base, fleet=replace(base.fleet, count=0))

    plan = PyVRPSolver().solve(problem, max_seconds=1)

    assert plan.routes == ()
    assert plan.unassigned == (1, 2, 3, 4, 5, 6)


def test_pyvrp_refuses_a_non_positive_time_limit() -> None:
    with pytest.raises(ValueError, match="max_seconds must be positive"):
        PyVRPSolver().solve(make_small_problem(), max_seconds=0)


def test_nearest_neighbour_plan_is_feasible_on_a_small_problem() -> None:
    problem = make_small_problem()

    plan = NearestNeighbourSolver().solve(problem, max_seconds=1)

    assert check_plan(problem, plan).violations == []
    assert plan.feasible is True


@pytest.mark.parametrize("name", SOLOMON)
def test_pyvrp_plan_on_a_solomon_instance_passes_the_checker(name: str) -> None:
    problem = read_solomon(DATA / f"{name}.txt")
    bks = read_best_known(DATA / f"{name}.sol").cost

    plan = PyVRPSolver(max_iterations=500).solve(problem, max_seconds=10, seed=0)

    report = check_plan(problem, plan)
    assert report.violations == []
    assert report.feasible is True
    # A few hundred iterations already land within 2% of the best known (10 s: see bench/).
    assert bks <= dimacs_cost(problem, plan.sequences) <= bks * 1.03


@pytest.mark.parametrize(
    ("name", "cost", "routes"),
    [("C101", 853.5, 10), ("R101", 1993.9, 21), ("RC101", 2064.5, 17)],
)
def test_nearest_neighbour_plan_on_a_solomon_instance_is_feasible(
    name: str, cost: float, routes: int
) -> None:
    problem = read_solomon(DATA / f"{name}.txt")

    plan = NearestNeighbourSolver().solve(problem, max_seconds=1)

    assert check_plan(problem, plan).violations == []
    assert plan.feasible is True
    assert (dimacs_cost(problem, plan.sequences), len(plan.routes)) == (cost, routes)


# --- Solomon files ------------------------------------------------------------------------


def test_solomon_instance_reads_with_dimacs_scaling() -> None:
    problem = read_solomon(DATA / "C101.txt")

    assert (problem.name, len(problem.stops), problem.scale) == ("C101", 100, 10)
    assert problem.fleet == Fleet(count=25, capacity=200, shift_start=0, shift_end=12360)
    assert problem.depot == Depot(x=40, y=50, earliest=0, latest=12360)
    assert problem.stops[0] == Stop(1, x=45, y=68, demand=10, earliest=9120, latest=9670,
                                    service=900)


@pytest.mark.parametrize(("name", "cost", "routes"),
                         [("C101", 827.3, 10), ("R101", 1637.7, 20), ("RC101", 1619.8, 15)])
def test_best_known_solution_recomputes_to_its_published_cost_and_is_feasible(
    name: str, cost: float, routes: int
) -> None:
    problem = read_solomon(DATA / f"{name}.txt")
    bks = read_best_known(DATA / f"{name}.sol")

    assert (bks.cost, len(bks.routes)) == (cost, routes)
    assert dimacs_cost(problem, bks.routes) == cost
    report = check_routes(problem, bks.routes)
    assert report.violations == []
    assert report.distance == round(cost * 10)


def test_reading_a_file_that_is_not_solomon_raises_a_format_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.txt"
    bogus.write_text("NAME: not a solomon file\n")

    with pytest.raises(InstanceFormatError, match="bogus.txt is not a Solomon instance"):
        read_solomon(bogus)


# --- CLI --------------------------------------------------------------------------------------

runner = CliRunner()


def test_cli_solve_prints_json_with_cost_routes_and_gap_to_best_known() -> None:
    result = runner.invoke(
        cli_app, ["routes", "solve", str(DATA / "C101.txt"), "--seconds", "0.5", "--json"]
    )

    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert {"cost", "routes", "feasible", "vehicles", "seconds", "bks", "gap_pct"} <= set(report)
    assert report["bks"] == 827.3
    assert report["gap_pct"] == round(100 * (report["cost"] - 827.3) / 827.3, 2)
    assert report["feasible"] is True
    assert report["vehicles"] == len(report["routes"])
    assert sorted(c for route in report["routes"] for c in route) == list(range(1, 101))
    problem = read_solomon(DATA / "C101.txt")
    assert report["cost"] == dimacs_cost(problem, report["routes"])


def test_cli_solve_without_a_solution_file_reports_no_gap(tmp_path: Path) -> None:
    shutil.copy(DATA / "R101.txt", tmp_path / "R101.txt")

    result = runner.invoke(
        cli_app, ["routes", "solve", str(tmp_path / "R101.txt"), "--seconds", "0.3", "--json"]
    )

    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert "bks" not in report and "gap_pct" not in report


def test_cli_solve_without_json_prints_a_summary_table() -> None:
    result = runner.invoke(cli_app,
                           ["routes", "solve", str(DATA / "C101.txt"), "--seconds", "0.3"])

    assert result.exit_code == 0, result.stderr
    assert "C101" in result.stdout
    assert "best known 827.3" in result.stdout


def test_cli_help_shows_an_example() -> None:
    result = runner.invoke(cli_app, ["routes", "solve", "--help"])

    assert result.exit_code == 0
    assert "Example: dropline routes solve" in result.stdout


def _c101_with(tmp_path: Path, old: str, new: str) -> Path:
    text = (DATA / "C101.txt").read_text()
    assert old in text
    changed = tmp_path / "C101.txt"  # no .sol beside it
    changed.write_text(text.replace(old, new, 1))
    return changed


@pytest.mark.parametrize(("old", "new", "message"), [
    # customer 3's x coordinate: numpy would read it as -1
    ("    3      42         66", "    3      4O         66", "C101.txt: customer line '3 4O 66"),
    ("    3      42         66", "    3      42.5       66", "C101.txt: customer line '3 42.5 66"),
    ("    3      42         66", "    3      42", "C101.txt: customer line '3 42"),
    ("  25         200", "   0         200",
     "C101.txt needs at least one vehicle with a capacity above 0 (it has 0"),
    ("  25         200", "  25           0", "C101.txt needs at least one vehicle"),
])
def test_cli_solve_refuses_an_unreadable_customer_line_or_no_fleet(tmp_path: Path, old: str,
                                                                   new: str, message: str) -> None:
    result = runner.invoke(cli_app, ["routes", "solve", str(_c101_with(tmp_path, old, new)),
                                     "--seconds", "0.2", "--json"])

    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {message}")
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.txt"], "error: no such file: missing.txt"),
        (["C101.txt", "--format", "tsplib"], "error: unknown format 'tsplib'; supported: solomon"),
        (["C101.txt", "--seconds", "0"], "error: --seconds must be positive, got 0.0"),
        (["C101.txt", "--seconds", "-1"], "error: --seconds must be positive, got -1.0"),
        (["C101.sol"], "error: C101.sol is not a Solomon instance"),
    ],
)
def test_cli_solve_rejects_bad_input_with_exit_code_2(
    args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(DATA)

    result = runner.invoke(cli_app, ["routes", "solve", *args])

    assert result.exit_code == 2
    assert result.stderr.startswith(message)
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
