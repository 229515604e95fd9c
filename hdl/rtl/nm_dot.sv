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
    logic signed [AW-1:0]   beat_sum;
    logic                   beat_err;
    logic signed [AW-1:0]   acc_q;
    logic                   err_q;
    logic [IW-1:0]          ix;
    logic [IW-1:0]          ix_prev;
    logic signed [DW-1:0]   w_sel;
    logic signed [DW-1:0]   a_sel;
    logic signed [2*DW-1:0] prod;

    // Index mux, multipliers and adder tree (combinational, one beat).
    always @(*) begin
        beat_sum = '0;
        beat_err = 1'b0;
        ix = '0;
        ix_prev = '0;
        w_sel = '0;
        a_sel = '0;
        prod = '0;
        for (int g = 0; g < G; g++) begin
            for (int j = 0; j < N; j++) begin
                ix = idx[(g*N+j)*IW +: IW];
                w_sel = wgt[(g*N+j)*DW +: DW];
                a_sel = '0;
                for (int p = 0; p < M; p++) begin
                    if (ix == p[IW-1:0]) a_sel = act[(g*M+p)*DW +: DW];
                end
                prod = w_sel * a_sel;
                beat_sum = beat_sum + AW'(prod);
                if (j > 0) begin
                    ix_prev = idx[(g*N+j-1)*IW +: IW];
                    if (ix <= ix_prev) beat_err = 1'b1;
                end
            end
        end
    end

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
