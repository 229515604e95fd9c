`timescale 1ns/1ps
// nm_dot: an N:M sparse dot-product unit.
//
// Every beat carries G groups. Group g brings M dense activations and N compressed weights, each
// weight with a log2(M)-bit index (ascending within the group, as NVIDIA's 2:4 metadata is) that
// picks its activation. G*N multipliers and an adder tree do per beat the work of G*M dense MACs.
// Beats accumulate until one arrives with in_last; the sum then leaves on out_data one cycle later.
// out_err flags a dot product in which some group's indices were not strictly ascending.
// Handshakes are valid/ready on both sides; in_ready = !out_valid || out_ready.
module nm_dot #(
    parameter int N  = 2,
    parameter int M  = 4,
    parameter int G  = 4,
    parameter int DW = 8,
    parameter int AW = 32,
    parameter int IW = (M > 1) ? $clog2(M) : 1
) (
    input  logic              clk,
    input  logic              rst_n,
    input  logic              in_valid,
    output logic              in_ready,
    input  logic              in_last,
    input  logic [G*M*DW-1:0] act,
    input  logic [G*N*DW-1:0] wgt,
    input  logic [G*N*IW-1:0] idx,
    output logic              out_valid,
    input  logic              out_ready,
    output logic [AW-1:0]     out_data,
    output logic              out_err
);
    logic signed [AW-1:0] acc_q;
    logic                 err_q;
    logic signed [AW-1:0] beat_sum;
    logic                 beat_err;
    logic [G*N*2*DW-1:0]  prods;     // every lane's product, packed
    logic [G*N-1:0]       bad;       // per lane: index not above the previous lane's

    // One lane per kept weight: its index picks one of its group's M activations.
    for (genvar gg = 0; gg < G; gg++) begin : grp
        for (genvar jj = 0; jj < N; jj++) begin : lane
            wire        [IW-1:0] ix = idx[(gg*N+jj)*IW +: IW];
            wire signed [DW-1:0] w  = wgt[(gg*N+jj)*DW +: DW];
            logic signed [DW-1:0] a;
            always @(*) begin
                a = '0;
                for (int p = 0; p < M; p++) begin
                    if (ix == p[IW-1:0]) a = act[(gg*M+p)*DW +: DW];
                end
            end
            assign prods[(gg*N+jj)*2*DW +: 2*DW] = w * a;
            if (jj > 0) begin : chk
                assign bad[gg*N+jj] = ix <= idx[(gg*N+jj-1)*IW +: IW];
            end else begin : first
                assign bad[gg*N+jj] = 1'b0;
            end
        end
    end

    // Adder tree over the lanes.
    always @(*) begin
        beat_sum = '0;
        for (int i = 0; i < G*N; i++) begin
            beat_sum = beat_sum + AW'($signed(prods[i*2*DW +: 2*DW]));
        end
    end
    assign beat_err = |bad;

    assign in_ready = !out_valid || out_ready;

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            acc_q     <= '0;
            err_q     <= 1'b0;
            out_valid <= 1'b0;
            out_data  <= '0;
            out_err   <= 1'b0;
        end else begin
            if (out_valid && out_ready) out_valid <= 1'b0;
            if (in_valid && in_ready) begin
                if (in_last) begin
                    out_data  <= acc_q + beat_sum;
                    out_err   <= err_q | beat_err;
                    out_valid <= 1'b1;
                    acc_q     <= '0;
                    err_q     <= 1'b0;
                end else begin
                    acc_q <= acc_q + beat_sum;
                    err_q <= err_q | beat_err;
                end
            end
        end
    end
endmodule
